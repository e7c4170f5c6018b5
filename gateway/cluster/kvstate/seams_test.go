package kvstate_test

import (
	"github.com/pushpull/pushpull/gateway/cluster/kvstate"
	"github.com/pushpull/pushpull/gateway/live"
)

// The seams live with their consumer; asserting here keeps the package
// itself free of the live import.
var (
	_ live.WatchStore     = (*kvstate.Watches)(nil)
	_ live.SharedPresence = (*kvstate.Presence)(nil)
)
