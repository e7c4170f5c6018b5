package kvregistry

import (
	"strconv"
	"testing"

	"github.com/pushpull/pushpull/devices"
)

// BenchmarkListByUsers100 is a fan-out to 100 users with two devices each
// against an in-process server (loopback, so round trips are cheap).
func BenchmarkListByUsers100(b *testing.B) {
	s := startServer(b, b.TempDir())
	r, err := Open(bg, connect(b, s), Options{})
	if err != nil {
		b.Fatal(err)
	}
	users := make([]string, 100)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
		for j := range 2 {
			d := devices.Device{User: users[i], Platform: devices.PlatformFCM, Token: "tok-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)}
			if _, err := r.Register(bg, d); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if m, err := r.ListByUsers(bg, users); err != nil || len(m) != 100 {
			b.Fatalf("ListByUsers = %d users, %v", len(m), err)
		}
	}
}

// BenchmarkRegister is one registration of a new device.
func BenchmarkRegister(b *testing.B) {
	s := startServer(b, b.TempDir())
	r, err := Open(bg, connect(b, s), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		d := devices.Device{User: "u" + strconv.Itoa(i%50), Platform: devices.PlatformFCM, Token: "tok-" + strconv.Itoa(i)}
		if _, err := r.Register(bg, d); err != nil {
			b.Fatal(err)
		}
	}
}
