package bitrix

import (
	"encoding/json"
	"fmt"
)

// MetaCodec carries what a Bitrix publish attaches to an event (the raw
// body, sender, expiry, user params, dictionary) between the nodes of a
// cluster (gateway/cluster.MetaCodec), so that a message published to one
// node reaches Bitrix clients on every node exactly as the reference
// server would render it.
type MetaCodec struct{}

// metaWire is meta on the wire between nodes.
type metaWire struct {
	Body       []byte                     `json:"b"`
	Sender     SenderType                 `json:"s"`
	SenderID   []byte                     `json:"i,omitempty"`
	Expiry     uint32                     `json:"e"`
	UserParams map[string]json.RawMessage `json:"p,omitempty"`
	Dictionary json.RawMessage            `json:"d,omitempty"`
}

// EncodeMeta encodes a Bitrix meta; false for anything else.
func (MetaCodec) EncodeMeta(m any) ([]byte, bool) {
	bm, ok := m.(*meta)
	if !ok || bm == nil {
		return nil, false
	}
	b, err := json.Marshal(metaWire{Body: bm.body, Sender: bm.sender, SenderID: bm.senderID,
		Expiry: bm.expiry, UserParams: bm.userParams, Dictionary: bm.dictionary})
	if err != nil {
		return nil, false
	}
	return b, true
}

// DecodeMeta decodes what EncodeMeta wrote.
func (MetaCodec) DecodeMeta(b []byte) (any, error) {
	var w metaWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("bitrix: event meta: %w", err)
	}
	if len(w.Body) == 0 {
		return nil, fmt.Errorf("bitrix: event meta without a body")
	}
	return &meta{body: w.Body, sender: w.Sender, senderID: w.SenderID, expiry: w.Expiry,
		userParams: w.UserParams, dictionary: w.Dictionary}, nil
}
