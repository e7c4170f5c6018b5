// Package bitrix lets pushpull stand in for the Bitrix push server (the
// "queue server" of the 1C-Bitrix / Bitrix24 pull module): the PHP module
// publishes to it and the official JS PullClient subscribes to it, unchanged.
//
// It owns the Bitrix wire protocols and nothing else: CHANNEL_ID lists and
// their HMAC signatures, version 3 text publish and legacy frames, version 4
// protobuf (RequestBatch / ResponseBatch, written by hand with protowire),
// version 5 JSON-RPC with JWT subscribe, the long-polling and WebSocket
// subscribe paths, the system messages (server_restart), and a
// pull.config.get-shaped config endpoint for non-Bitrix backends. Delivery,
// history and message ids are the hub's (gateway/hub): a Bitrix channel is a
// hub channel with a prefix, and each wire format is a hub.Format, so an
// event is encoded once per format and frames are batched by the hub writer.
//
// Hub channel names:
//
//	bx:<32hex>   a Bitrix private or shared channel id (what PHP publishes to)
//	bxp:<32hex>  a public channel id; subscribing to "priv:pub" adds it, so a
//	             message to the public id reaches the private channel's
//	             connections (the public-id alias)
//	user:<id>    a user (version 5 userList, JWT sub); also joined by the
//	             connections of channels derived by the config endpoint, so
//	             native pushpull events to that user reach Bitrix clients too
//
// Guarantees: a CHANNEL_ID list is accepted whole or not at all; publish
// endpoints answer before fanning out; replay after a mid is complete or the
// connection starts live (ids of another epoch are treated as absent, as the
// reference servers treat invalid ids); every protobuf OutgoingMessage carries
// an id, created and a sender.
package bitrix
