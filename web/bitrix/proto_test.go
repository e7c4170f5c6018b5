package bitrix

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// schema builds the Push server 2.0 messages from the BITRIX.md field table
// with the real protobuf runtime, to check the hand-written wire code
// against an independent encoder/decoder.
func schema(t testing.TB) protoreflect.FileDescriptor {
	t.Helper()
	const (
		optional = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		repeated = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		tBytes   = descriptorpb.FieldDescriptorProto_TYPE_BYTES
		tString  = descriptorpb.FieldDescriptorProto_TYPE_STRING
		tBool    = descriptorpb.FieldDescriptorProto_TYPE_BOOL
		tUint32  = descriptorpb.FieldDescriptorProto_TYPE_UINT32
		tFixed32 = descriptorpb.FieldDescriptorProto_TYPE_FIXED32
		tMsg     = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
		tEnum    = descriptorpb.FieldDescriptorProto_TYPE_ENUM
	)
	f := func(name string, num int32, label descriptorpb.FieldDescriptorProto_Label, typ descriptorpb.FieldDescriptorProto_Type, typeName string, oneof ...int32) *descriptorpb.FieldDescriptorProto {
		fd := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label.Enum(), Type: typ.Enum(), JsonName: proto.String(name)}
		if typeName != "" {
			fd.TypeName = proto.String("." + typeName)
		}
		if len(oneof) > 0 {
			fd.OneofIndex = proto.Int32(oneof[0])
		}
		return fd
	}
	m := func(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
	}
	request := m("Request",
		f("incomingMessages", 1, optional, tMsg, "IncomingMessagesRequest", 0),
		f("channelStats", 2, optional, tMsg, "ChannelStatsRequest", 0),
		f("serverStats", 3, optional, tMsg, "ServerStatsRequest", 0))
	request.OneofDecl = []*descriptorpb.OneofDescriptorProto{{Name: proto.String("command")}}
	response := m("Response",
		f("outgoingMessages", 1, optional, tMsg, "OutgoingMessagesResponse", 0),
		f("channelStats", 2, optional, tMsg, "ChannelStatsResponse", 0),
		f("serverStats", 3, optional, tMsg, "JsonResponse", 0))
	response.OneofDecl = []*descriptorpb.OneofDescriptorProto{{Name: proto.String("command")}}
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("push.proto"), Syntax: proto.String("proto3"),
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("SenderType"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: proto.String("UNKNOWN"), Number: proto.Int32(0)}, {Name: proto.String("CLIENT"), Number: proto.Int32(1)}, {Name: proto.String("BACKEND"), Number: proto.Int32(2)}}}},
		MessageType: []*descriptorpb.DescriptorProto{
			m("RequestBatch", f("requests", 1, repeated, tMsg, "Request")),
			request,
			m("IncomingMessagesRequest", f("messages", 1, repeated, tMsg, "IncomingMessage")),
			m("IncomingMessage", f("receivers", 1, repeated, tMsg, "Receiver"), f("sender", 2, optional, tMsg, "Sender"),
				f("body", 3, optional, tString, ""), f("expiry", 4, optional, tUint32, ""), f("type", 5, optional, tString, "")),
			m("Receiver", f("id", 1, optional, tBytes, ""), f("isPrivate", 2, optional, tBool, ""), f("signature", 3, optional, tBytes, "")),
			m("ChannelStatsRequest", f("channels", 1, repeated, tMsg, "ChannelId")),
			m("ChannelId", f("id", 1, optional, tBytes, ""), f("isPrivate", 2, optional, tBool, ""), f("signature", 3, optional, tBytes, "")),
			m("ServerStatsRequest"),
			m("Sender", f("type", 1, optional, tEnum, "SenderType"), f("id", 2, optional, tBytes, "")),
			m("ResponseBatch", f("responses", 1, repeated, tMsg, "Response")),
			response,
			m("OutgoingMessagesResponse", f("messages", 1, repeated, tMsg, "OutgoingMessage")),
			m("OutgoingMessage", f("id", 1, optional, tBytes, ""), f("body", 2, optional, tString, ""),
				f("expiry", 3, optional, tUint32, ""), f("created", 4, optional, tFixed32, ""), f("sender", 5, optional, tMsg, "Sender")),
			m("ChannelStatsResponse", f("channels", 1, repeated, tMsg, "ChannelStats")),
			m("ChannelStats", f("id", 1, optional, tBytes, ""), f("isPrivate", 2, optional, tBool, ""), f("isOnline", 3, optional, tBool, "")),
			m("JsonResponse", f("json", 1, optional, tString, "")),
		},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func newMsg(fd protoreflect.FileDescriptor, name string) *dynamicpb.Message {
	return dynamicpb.NewMessage(fd.Messages().ByName(protoreflect.Name(name)))
}

func TestOutgoingDecodesWithProtobufRuntime(t *testing.T) {
	t.Parallel()
	fd := schema(t)
	mid := "17000000000000000000000042"
	var frame []byte
	frame = AppendOutgoing(frame, &OutgoingMessage{ID: midBytes(mid), Body: []byte(`{"a":1}`), Expiry: 60, Created: 1700000000, Sender: SenderBackend})
	frame = AppendOutgoing(frame, &OutgoingMessage{ID: midBytes(mid), Body: []byte(`{}`), Created: 7, Sender: SenderClient, SenderID: []byte{1, 2}})

	batch := newMsg(fd, "ResponseBatch")
	if err := proto.Unmarshal(frame, batch); err != nil {
		t.Fatal(err)
	}
	responses := batch.Get(fd.Messages().ByName("ResponseBatch").Fields().ByName("responses")).List()
	if responses.Len() != 2 {
		t.Fatalf("joined frames must hold 2 responses, got %d", responses.Len())
	}
	out := responses.Get(0).Message()
	msgs := out.Get(out.Descriptor().Fields().ByName("outgoingMessages")).Message()
	m := msgs.Get(msgs.Descriptor().Fields().ByName("messages")).List().Get(0).Message()
	fields := m.Descriptor().Fields()
	if id := m.Get(fields.ByName("id")).Bytes(); len(id) != 13 || bytes.Compare(id, midBytes(mid)) != 0 {
		t.Errorf("id = %x", id)
	}
	if got := m.Get(fields.ByName("body")).String(); got != `{"a":1}` {
		t.Errorf("body = %s", got)
	}
	if got := m.Get(fields.ByName("created")).Uint(); got != 1700000000 {
		t.Errorf("created = %d", got)
	}
	if got := m.Get(fields.ByName("expiry")).Uint(); got != 60 {
		t.Errorf("expiry = %d", got)
	}
	if !m.Has(fields.ByName("sender")) {
		t.Fatal("sender must always be set")
	}
	sender := m.Get(fields.ByName("sender")).Message()
	if got := sender.Get(sender.Descriptor().Fields().ByName("type")).Enum(); got != 2 {
		t.Errorf("sender.type = %d", got)
	}
}

func TestParseRequestBatchFromProtobufRuntime(t *testing.T) {
	t.Parallel()
	fd := schema(t)
	recv := newMsg(fd, "Receiver")
	recv.Set(recv.Descriptor().Fields().ByName("id"), protoreflect.ValueOfBytes(bytes.Repeat([]byte{0xab}, 16)))
	recv.Set(recv.Descriptor().Fields().ByName("isPrivate"), protoreflect.ValueOfBool(true))
	im := newMsg(fd, "IncomingMessage")
	imf := im.Descriptor().Fields()
	im.Mutable(imf.ByName("receivers")).List().Append(protoreflect.ValueOfMessage(recv))
	im.Set(imf.ByName("body"), protoreflect.ValueOfString(`{"module_id":"im"}`))
	im.Set(imf.ByName("expiry"), protoreflect.ValueOfUint32(300))
	im.Set(imf.ByName("type"), protoreflect.ValueOfString("im_message"))
	req := newMsg(fd, "Request")
	inm := req.Mutable(req.Descriptor().Fields().ByName("incomingMessages")).Message()
	inm.Mutable(inm.Descriptor().Fields().ByName("messages")).List().Append(protoreflect.ValueOfMessage(im))
	batch := newMsg(fd, "RequestBatch")
	batch.Mutable(batch.Descriptor().Fields().ByName("requests")).List().Append(protoreflect.ValueOfMessage(req))
	raw, err := proto.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRequestBatch(raw, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got.Command != cmdIncomingMessages || len(got.Messages) != 1 {
		t.Fatalf("got %+v", got)
	}
	m := got.Messages[0]
	if m.Body != `{"module_id":"im"}` || m.Expiry != 300 || m.Type != "im_message" || len(m.Receivers) != 1 ||
		!m.Receivers[0].IsPrivate || len(m.Receivers[0].ID) != 16 {
		t.Fatalf("message = %+v", m)
	}
	if _, err := ParseRequestBatch(raw, 0); err != nil {
		t.Fatal(err)
	}
	two := append(append([]byte{}, raw...), raw...) // still requests[0] only
	if got, _ := ParseRequestBatch(two, 100); len(got.Messages) != 1 {
		t.Fatalf("only the first request is served, got %d messages", len(got.Messages))
	}
	if _, err := ParseRequestBatch([]byte{0x0a, 0x05, 0x01}, 100); !errors.Is(err, ErrBadProto) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestChannelStatsDecode(t *testing.T) {
	t.Parallel()
	fd := schema(t)
	b := AppendChannelStats(nil, []ChannelStat{{ID: []byte("0123456789abcdef"), IsPrivate: true, IsOnline: true}, {ID: []byte("fedcba9876543210")}})
	batch := newMsg(fd, "ResponseBatch")
	if err := proto.Unmarshal(b, batch); err != nil {
		t.Fatal(err)
	}
	resp := batch.Get(batch.Descriptor().Fields().ByName("responses")).List().Get(0).Message()
	cs := resp.Get(resp.Descriptor().Fields().ByName("channelStats")).Message()
	list := cs.Get(cs.Descriptor().Fields().ByName("channels")).List()
	if list.Len() != 2 {
		t.Fatalf("channels = %d", list.Len())
	}
	first := list.Get(0).Message()
	if !first.Get(first.Descriptor().Fields().ByName("isOnline")).Bool() {
		t.Error("first channel must be online")
	}
	second := list.Get(1).Message()
	if second.Get(second.Descriptor().Fields().ByName("isOnline")).Bool() {
		t.Error("second channel must be offline")
	}
}

func FuzzParseRequestBatch(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Add(AppendOutgoing(nil, &OutgoingMessage{ID: []byte{1}, Body: []byte("{}")}))
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseRequestBatch(b, 5)
		if err != nil {
			if !errors.Is(err, ErrBadProto) && codeOf(err) != CodeTooManyMessages {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if len(req.Messages) > 5 {
			t.Fatalf("limit not enforced: %d", len(req.Messages))
		}
	})
}
