package kvstate

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkRemote is one lookup on the publish path: 3 other nodes with
// 10k users each in the replica (filled by hand: the lookup is measured,
// not the loading).
func BenchmarkRemote(b *testing.B) {
	s := startServer(b, b.TempDir())
	p := openPresence(b, connect(b, s).js, PresenceOptions{Node: "self", Heartbeat: time.Hour})
	now := time.Now()
	p.mu.Lock()
	for n := range 3 {
		st := &nodeState{beat: now, beatRev: 1, users: map[string]uint64{}}
		for u := range 10000 {
			st.users["user-"+strconv.Itoa(n*10000+u)] = 1
		}
		p.nodes["node-"+strconv.Itoa(n)] = st
	}
	p.mu.Unlock()
	keys := make([]string, 40000) // a quarter miss
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		_ = p.Remote(keys[i%len(keys)])
	}
}

// BenchmarkSetLocal is the caller's cost of a transition; the writer
// goroutine writes to the in-process server concurrently.
func BenchmarkSetLocal(b *testing.B) {
	s := startServer(b, b.TempDir())
	p := openPresence(b, connect(b, s).js, PresenceOptions{Node: "self", Heartbeat: time.Hour})
	users := make([]string, 1000)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		p.SetLocal(users[i%len(users)], i%2 == 0)
	}
}

// BenchmarkWatchers is the tag fan-out lookup: 100 watchers on the tag.
func BenchmarkWatchers(b *testing.B) {
	s := startServer(b, b.TempDir())
	w := openWatches(b, connect(b, s).js, WatchOptions{})
	users := make([]string, 100)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	now := time.Now()
	if err := w.Add(users, []string{"news"}, time.Hour, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(w.Watchers("news", now)) != 100 {
			b.Fatal("watchers lost")
		}
	}
}

// BenchmarkAdd is one watch written to the in-process server.
func BenchmarkAdd(b *testing.B) {
	s := startServer(b, b.TempDir())
	w := openWatches(b, connect(b, s).js, WatchOptions{})
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := w.Add([]string{"user-" + strconv.Itoa(i%1000)}, []string{"news"}, time.Hour, now); err != nil {
			b.Fatal(err)
		}
	}
}
