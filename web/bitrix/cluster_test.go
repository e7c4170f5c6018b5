package bitrix

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pushpull/pushpull/gateway/cluster"
	"github.com/pushpull/pushpull/gateway/cluster/natstest"
	"github.com/pushpull/pushpull/gateway/hub"
)

// newClusterEnv is newEnv for one node of a cluster: its hub is fed by a
// cluster.Bus on the NATS server ns.
func newClusterEnv(t *testing.T, ns *server.Server) *testEnv {
	t.Helper()
	_, js := natstest.Connect(t, ns)
	bus, err := cluster.Prepare(context.Background(), js, cluster.Options{Meta: MetaCodec{}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Options{Epoch: bus.Epoch(), CatchUp: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if err := bus.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	return serveEnv(t, Deps{Hub: h, Bus: bus}, Options{PollHold: 5 * time.Second})
}

// TestClusterPublishOnOneNodePollOnAnother: the portal publishes to node
// A (v3 text and v4 binary); a client long-polling node B gets the
// messages rendered exactly as a client of A does (the raw body and the
// sender travel with the event), and resumes on B from an id seen on A.
func TestClusterPublishOnOneNodePollOnAnother(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t, "")
	a, b := newClusterEnv(t, ns), newClusterEnv(t, ns)

	list, priv := a.userChannels(t, 42, 3)
	// A held poll on B: answered by a publish on A.
	done := make(chan []byte, 1)
	go func() {
		_, body := b.do(t, http.MethodGet, b.sub.URL+"/bitrix/sub/?CHANNEL_ID="+q(list), nil)
		done <- body
	}()
	waitUntil(t, "poll held on B", func() bool { return b.hub.Stats().Channels >= 1 })
	res, body := a.do(t, http.MethodPost, a.pub.URL+"/bitrix/pub/?CHANNEL_ID="+priv, []byte(`{"module_id":"im","command":"one","params":{"x":1},"custom":"kept"}`), "Message-Expiry", "60")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("publish on A: %d %q", res.StatusCode, body)
	}
	onB := <-done
	got := frameBodies(t, onB)
	// "custom" is in the raw body only (an event rendered from its plain
	// fields drops it): the Bitrix meta crossed the nodes.
	if len(got) != 1 || got[0]["command"] != "one" || got[0]["custom"] != "kept" {
		t.Fatalf("B got %q", onB)
	}
	// Same mid, same bytes: A's replay of the message equals B's frame.
	waitUntil(t, "A applied it", func() bool { return a.hub.LastSeq() >= 1 })
	first := a.hub.MID(0)
	_, onA := a.do(t, http.MethodGet, a.sub.URL+"/bitrix/sub/?CHANNEL_ID="+q(list)+"&mid="+first, nil)
	if string(onA) != string(onB) {
		t.Fatalf("rendering differs between nodes:\nA: %q\nB: %q", onA, onB)
	}

	// A binary (v4) publish on A, replayed on B from the first message's id.
	a.do(t, http.MethodPost, a.pub.URL+"/bitrix/pub/?binaryMode=true", requestBatch(t, rawID(priv), `{"module_id":"im","command":"two","params":{}}`, 60))
	waitUntil(t, "B applied both", func() bool { return b.hub.LastSeq() >= 2 })
	_, replay := b.do(t, http.MethodGet, b.sub.URL+"/bitrix/sub/?CHANNEL_ID="+q(list)+"&mid="+a.hub.MID(1), nil)
	if got := frameBodies(t, replay); len(got) != 1 || got[0]["command"] != "two" {
		t.Fatalf("replay on B: %q", replay)
	}
}
