package kvregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/pushpull/pushpull/devices"
)

// multiGetChunk bounds the keys of one batched read: the server answers at
// most 1024 messages per request.
const multiGetChunk = 1000

// errNoBatch means the server cannot answer a batched read (a server
// before 2.11, or a bucket without direct gets): callers fall back to one
// read per key.
var errNoBatch = errors.New("kvregistry: batched reads not available")

// multiGet reads the current values of keys in bucket with JetStream's
// batched direct get ("multi_last"): one request and one stream of
// answers per 1000 keys, instead of a round trip per key. Deleted and
// missing keys are absent from the result. Like a single KV Get with
// direct gets, it may be served by any replica.
func (r *Registry) multiGet(ctx context.Context, bucket string, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	prefix := "$KV." + bucket + "."
	for start := 0; start < len(keys); start += multiGetChunk {
		chunk := keys[start:min(start+multiGetChunk, len(keys))]
		if err := r.multiGetChunk(ctx, bucket, prefix, chunk, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *Registry) multiGetChunk(ctx context.Context, bucket, prefix string, keys []string, out map[string][]byte) error {
	subjects := make([]string, len(keys))
	for i, k := range keys {
		subjects[i] = prefix + k
	}
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{subjects})
	if err != nil {
		return err
	}
	inbox := r.nc.NewRespInbox()
	sub, err := r.nc.SubscribeSync(inbox)
	if err != nil {
		return storageErr(ctx, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := r.nc.PublishRequest("$JS.API.DIRECT.GET.KV_"+bucket, inbox, req); err != nil {
		return storageErr(ctx, err)
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if errors.Is(err, nats.ErrNoResponders) {
			return errNoBatch // no direct gets on this stream
		}
		if err != nil {
			return storageErr(ctx, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204": // end of batch
			return nil
		case "404": // none of the keys exists
			return nil
		case "503": // no responders: no direct gets on this stream
			return errNoBatch
		case "408":
			return fmt.Errorf("%w: %s", errNoBatch, m.Header.Get("Description"))
		default:
			return storageErr(ctx, fmt.Errorf("batched read of %s: status %s %s", bucket, status, m.Header.Get("Description")))
		}
		subj := m.Header.Get("Nats-Subject")
		key, ok := strings.CutPrefix(subj, prefix)
		if !ok {
			continue
		}
		switch m.Header.Get("KV-Operation") {
		case "DEL", "PURGE":
			continue
		}
		out[key] = m.Data
	}
}

// listBatched is ListByUsers in three batched reads: the users' indexes,
// then the devices they name, then the owners of those devices' tokens.
// The checks are listUser's: a device counts under the user its record
// names and only while its token's key names it.
func (r *Registry) listBatched(ctx context.Context, users []string) (map[string][]devices.Device, error) {
	ukeys := make([]string, len(users))
	for i, u := range users {
		ukeys[i] = userKey(u)
	}
	rawUsers, err := r.multiGet(ctx, r.opts.UsersBucket, ukeys)
	if err != nil {
		return nil, err
	}
	docs := make(map[string]userDoc, len(rawUsers))
	var ids []string
	for i, u := range users {
		raw, ok := rawUsers[ukeys[i]]
		if !ok {
			continue
		}
		var doc userDoc
		if json.Unmarshal(raw, &doc) != nil {
			continue // rebuilt by the user's next registration (see getUser)
		}
		docs[u] = doc
		for _, e := range doc.Devices {
			ids = append(ids, idKey(e.ID))
		}
	}
	rawRecs, err := r.multiGet(ctx, r.opts.DevicesBucket, ids)
	if err != nil {
		return nil, err
	}
	recs := make(map[string]record, len(rawRecs))
	var tkeys []string
	for _, doc := range docs {
		for _, e := range doc.Devices {
			raw, ok := rawRecs[idKey(e.ID)]
			if !ok {
				continue
			}
			var rec record
			if err := json.Unmarshal(raw, &rec); err != nil || rec.ID != e.ID {
				return nil, fmt.Errorf("%w: device %q", errCorrupt, e.ID)
			}
			recs[e.ID] = rec
			tkeys = append(tkeys, tokenKey(rec.Platform, rec.Token))
			if rec.VoIPToken != "" {
				tkeys = append(tkeys, tokenKey(rec.Platform, rec.VoIPToken))
			}
		}
	}
	rawToks, err := r.multiGet(ctx, r.opts.TokensBucket, tkeys)
	if err != nil {
		return nil, err
	}
	owns := func(platformName, tok, id string) bool {
		raw, ok := rawToks[tokenKey(platformName, tok)]
		if !ok {
			return false
		}
		var te tokenEntry
		return json.Unmarshal(raw, &te) == nil && te.Token == tok && te.ID == id
	}
	out := make(map[string][]devices.Device, len(docs))
	for u, doc := range docs {
		var ds []devices.Device
		for _, e := range doc.Devices {
			rec, ok := recs[e.ID]
			if !ok || rec.User != u {
				r.repairEntry(ctx, u, e)
				continue
			}
			if !owns(rec.Platform, rec.Token, rec.ID) {
				r.repairRecord(ctx, rec.ID, rec.Platform, rec.Token)
				continue
			}
			d := rec.Device
			if d.VoIPToken != "" && !owns(rec.Platform, rec.VoIPToken, rec.ID) {
				r.repairRecord(ctx, rec.ID, rec.Platform, d.VoIPToken)
				d.VoIPToken = ""
			}
			ds = append(ds, d)
		}
		if len(ds) > 0 {
			slices.SortFunc(ds, func(a, b devices.Device) int { return strings.Compare(a.ID, b.ID) })
			out[u] = ds
		}
	}
	return out, nil
}
