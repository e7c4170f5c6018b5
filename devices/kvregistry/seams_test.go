package kvregistry_test

import (
	"github.com/pushpull/pushpull/devices/kvregistry"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/web/api"
)

// The seams live with their consumers; asserting here keeps this storage
// package free of imports from the gateway and web layers.
var (
	_ push.Registry   = (*kvregistry.Registry)(nil)
	_ api.DeviceStore = (*kvregistry.Registry)(nil)
)
