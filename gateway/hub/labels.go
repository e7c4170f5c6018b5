package hub

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// Transport and protocol label values (ConnInfo, Track).
const (
	TransportWebSocket = "websocket"
	TransportSSE       = "sse"
	TransportLongPoll  = "longpoll"
	TransportShortPoll = "shortpoll"

	ProtocolNative   = "native"
	ProtocolBitrixV3 = "bitrix_v3" // text frames (also version 4 without binaryMode)
	ProtocolBitrixV4 = "bitrix_v4" // protobuf frames (binaryMode=true)
	ProtocolBitrixV5 = "bitrix_v5" // JSON-RPC
)

// Label is how a subscriber is counted: its transport and wire protocol.
type Label struct {
	Transport string
	Protocol  string
}

// label returns info's label with the defaults (websocket, native).
func (info ConnInfo) label() Label {
	l := Label{Transport: info.Transport, Protocol: info.Protocol}
	if l.Transport == "" {
		l.Transport = TransportWebSocket
	}
	if l.Protocol == "" {
		l.Protocol = ProtocolNative
	}
	return l
}

// LabelCount is the number of subscribers with one label: Open are present
// now (open connections, polls in progress), Total were ever opened.
type LabelCount struct {
	Label
	Open  int
	Total uint64
}

// pollCounts counts polls by label. Polls are requests, not Conns, so the
// hub learns about them from Track.
type pollCounts struct {
	mu sync.Mutex
	m  map[Label]*LabelCount
}

func (p *pollCounts) add(l Label, open int, total uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[Label]*LabelCount)
	}
	c := p.m[l]
	if c == nil {
		c = &LabelCount{Label: l}
		p.m[l] = c
	}
	c.Open += open
	c.Total += total
}

// Track counts a poll (a long or short polling request, described by info:
// Transport TransportLongPoll or TransportShortPoll) as a subscriber until
// the returned function is called; call it once, when the request ends.
// Conns are counted without it.
func (h *Hub) Track(info ConnInfo) (done func()) {
	l := info.label()
	h.polls.add(l, 1, 1)
	var once sync.Once
	return func() { once.Do(func() { h.polls.add(l, -1, 0) }) }
}

// Subscribers returns the open connections and polls in progress per label,
// and how many were opened since New (connections opened counted by
// NewConn). Sorted by transport, then protocol. It walks every connection,
// one shard lock at a time: meant for a metrics scrape, not a hot path.
func (h *Hub) Subscribers() []LabelCount {
	m := make(map[Label]*LabelCount)
	get := func(l Label) *LabelCount {
		c := m[l]
		if c == nil {
			c = &LabelCount{Label: l}
			m[l] = c
		}
		return c
	}
	for _, sh := range h.shards {
		sh.mu.Lock()
		for c := range sh.conns {
			get(c.info.label()).Open++
		}
		sh.mu.Unlock()
	}
	h.connsOpened.Range(func(k, v any) bool {
		get(k.(Label)).Total += v.(*counter).Load()
		return true
	})
	h.polls.mu.Lock()
	for l, c := range h.polls.m {
		x := get(l)
		x.Open += c.Open
		x.Total += c.Total
	}
	h.polls.mu.Unlock()
	out := make([]LabelCount, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b LabelCount) int {
		return cmp.Or(cmp.Compare(a.Transport, b.Transport), cmp.Compare(a.Protocol, b.Protocol))
	})
	return out
}

type counter = atomic.Uint64

// countOpened counts a new connection under its label (Hub.connsOpened).
func (h *Hub) countOpened(info ConnInfo) {
	l := info.label()
	v, ok := h.connsOpened.Load(l)
	if !ok {
		v, _ = h.connsOpened.LoadOrStore(l, new(counter))
	}
	v.(*counter).Add(1)
}
