package bitrix

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The Push server 2.0 protobuf schema (proto3, package-less), written by
// hand with protowire from the field table in BITRIX.md §3.2. Only what the
// server reads is decoded; unknown fields are skipped as proto3 requires.

// ErrBadProto is wrapped by every protobuf decoding error (4013 "Wrong
// Request Data").
var ErrBadProto = errors.New("bitrix: malformed protobuf")

// SenderType is the protobuf SenderType enum.
type SenderType int32

// Sender types.
const (
	SenderUnknown SenderType = 0
	SenderClient  SenderType = 1
	SenderBackend SenderType = 2
)

// Request commands (the Request oneof).
const (
	cmdNone = iota
	cmdIncomingMessages
	cmdChannelStats
	cmdServerStats
	cmdOther
)

// Receiver is an IncomingMessage receiver or a ChannelStats channel id.
type Receiver struct {
	ID        []byte // 16 raw bytes
	IsPrivate bool
	Signature []byte // raw HMAC digest
}

// IncomingMessage is one message of an incomingMessages request.
type IncomingMessage struct {
	Receivers []Receiver
	Body      string
	Expiry    uint32
	Type      string
}

// Request is the first Request of a RequestBatch (the servers process only
// requests[0]).
type Request struct {
	Command  int
	Messages []IncomingMessage
	Channels []Receiver // channelStats
}

// ParseRequestBatch decodes a RequestBatch and returns its first request;
// maxMessages bounds the messages decoded (ErrTooManyMessages past it).
func ParseRequestBatch(b []byte, maxMessages int) (Request, error) {
	var req Request
	first := true
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != 1 || typ != protowire.BytesType || !first {
			return nil
		}
		first = false
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			if typ != protowire.BytesType {
				return nil
			}
			switch num {
			case 1:
				req.Command = cmdIncomingMessages
				return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if num != 1 || typ != protowire.BytesType {
						return nil
					}
					if maxMessages > 0 && len(req.Messages) >= maxMessages {
						return ErrTooManyMessages
					}
					m, err := parseIncoming(v)
					req.Messages = append(req.Messages, m)
					return err
				})
			case 2:
				req.Command = cmdChannelStats
				return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if num != 1 || typ != protowire.BytesType {
						return nil
					}
					r, err := parseReceiver(v)
					req.Channels = append(req.Channels, r)
					return err
				})
			case 3:
				req.Command = cmdServerStats
			default:
				req.Command = cmdOther
			}
			return nil
		})
	})
	if err != nil {
		return Request{}, err
	}
	return req, nil
}

func parseIncoming(b []byte) (IncomingMessage, error) {
	var m IncomingMessage
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			r, err := parseReceiver(v)
			m.Receivers = append(m.Receivers, r)
			return err
		case num == 3 && typ == protowire.BytesType:
			m.Body = string(v)
		case num == 4 && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			m.Expiry = uint32(x)
		case num == 5 && typ == protowire.BytesType:
			m.Type = string(v)
		}
		return nil
	})
	return m, err
}

func parseReceiver(b []byte) (Receiver, error) {
	var r Receiver
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			r.ID = v
		case num == 2 && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			r.IsPrivate = x != 0
		case num == 3 && typ == protowire.BytesType:
			r.Signature = v
		}
		return nil
	})
	return r, err
}

// eachField calls fn for every field of the message b with its raw value:
// the payload for bytes fields, the encoded varint or fixed value otherwise.
func eachField(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrBadProto, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n >= 0 {
				v = b[:n]
			}
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrBadProto, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}

// OutgoingMessage is what AppendOutgoing encodes.
type OutgoingMessage struct {
	ID       []byte // 13-byte mid
	Body     []byte // JSON text
	Expiry   uint32
	Created  uint32 // unix seconds (fixed32)
	Sender   SenderType
	SenderID []byte
}

// AppendOutgoing appends a ResponseBatch holding one outgoingMessages
// Response with the single message m. Concatenated, such batches form one
// valid ResponseBatch (repeated fields append), which is how frames join.
func AppendOutgoing(dst []byte, m *OutgoingMessage) []byte {
	sender := protowire.SizeTag(1) + protowire.SizeVarint(uint64(m.Sender))
	if len(m.SenderID) > 0 {
		sender += protowire.SizeTag(2) + protowire.SizeBytes(len(m.SenderID))
	}
	msg := protowire.SizeTag(1) + protowire.SizeBytes(len(m.ID)) +
		protowire.SizeTag(2) + protowire.SizeBytes(len(m.Body)) +
		protowire.SizeTag(4) + protowire.SizeFixed32() +
		protowire.SizeTag(5) + protowire.SizeBytes(sender)
	if m.Expiry > 0 {
		msg += protowire.SizeTag(3) + protowire.SizeVarint(uint64(m.Expiry))
	}
	msgs := protowire.SizeTag(1) + protowire.SizeBytes(msg)
	resp := protowire.SizeTag(1) + protowire.SizeBytes(msgs)

	dst = protowire.AppendTag(dst, 1, protowire.BytesType) // ResponseBatch.responses
	dst = protowire.AppendVarint(dst, uint64(resp))
	dst = protowire.AppendTag(dst, 1, protowire.BytesType) // Response.outgoingMessages
	dst = protowire.AppendVarint(dst, uint64(msgs))
	dst = protowire.AppendTag(dst, 1, protowire.BytesType) // OutgoingMessagesResponse.messages
	dst = protowire.AppendVarint(dst, uint64(msg))
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	dst = protowire.AppendBytes(dst, m.ID)
	dst = protowire.AppendTag(dst, 2, protowire.BytesType)
	dst = protowire.AppendBytes(dst, m.Body)
	if m.Expiry > 0 {
		dst = protowire.AppendTag(dst, 3, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(m.Expiry))
	}
	dst = protowire.AppendTag(dst, 4, protowire.Fixed32Type)
	dst = protowire.AppendFixed32(dst, m.Created)
	dst = protowire.AppendTag(dst, 5, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(sender))
	dst = protowire.AppendTag(dst, 1, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(m.Sender))
	if len(m.SenderID) > 0 {
		dst = protowire.AppendTag(dst, 2, protowire.BytesType)
		dst = protowire.AppendBytes(dst, m.SenderID)
	}
	return dst
}

// ChannelStat is one entry of a channelStats response.
type ChannelStat struct {
	ID        []byte
	IsPrivate bool
	IsOnline  bool
}

// AppendChannelStats appends a ResponseBatch holding one channelStats
// Response.
func AppendChannelStats(dst []byte, stats []ChannelStat) []byte {
	var inner []byte
	for _, s := range stats {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendBytes(e, s.ID)
		if s.IsPrivate {
			e = protowire.AppendTag(e, 2, protowire.VarintType)
			e = protowire.AppendVarint(e, 1)
		}
		if s.IsOnline {
			e = protowire.AppendTag(e, 3, protowire.VarintType)
			e = protowire.AppendVarint(e, 1)
		}
		inner = protowire.AppendTag(inner, 1, protowire.BytesType)
		inner = protowire.AppendBytes(inner, e)
	}
	var resp []byte
	resp = protowire.AppendTag(resp, 2, protowire.BytesType) // Response.channelStats
	resp = protowire.AppendBytes(resp, inner)
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	return protowire.AppendBytes(dst, resp)
}

// AppendJSONResponse appends a ResponseBatch holding one serverStats
// Response (JsonResponse{json}).
func AppendJSONResponse(dst []byte, json []byte) []byte {
	var inner []byte
	inner = protowire.AppendTag(inner, 1, protowire.BytesType)
	inner = protowire.AppendBytes(inner, json)
	var resp []byte
	resp = protowire.AppendTag(resp, 3, protowire.BytesType)
	resp = protowire.AppendBytes(resp, inner)
	dst = protowire.AppendTag(dst, 1, protowire.BytesType)
	return protowire.AppendBytes(dst, resp)
}
