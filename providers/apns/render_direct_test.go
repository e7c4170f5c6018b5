package apns

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// TestRenderDirectMatchesMaps: the direct renderer gives the general
// path's headers and body, byte for byte where the data's nested keys are
// sorted and its strings unescaped, the same JSON value otherwise, and
// leaves every case it does not cover to the general path.
func TestRenderDirectMatchesMaps(t *testing.T) {
	t.Parallel()
	badge, zero := 7, 0
	exp := time.Unix(1_900_000_000, 0)
	cases := []struct {
		name  string
		n     providers.Notification
		bytes bool // byte-identical expected
	}{
		{"empty", providers.Notification{}, true},
		{"alert", providers.Notification{Title: "Anna", Subtitle: "Chat", Body: "Hi", Badge: &badge, Sound: "default",
			Category: "MSG", ThreadID: "t1", MutableContent: true, ContentAvailable: true, CollapseID: "c", ExpiresAt: exp}, true},
		{"zero badge", providers.Notification{Body: "x", Badge: &zero}, true},
		{"background", providers.Notification{PushType: providers.PushBackground, Priority: providers.PriorityHigh}, true},
		{"voip normal", providers.Notification{PushType: providers.PushVoIP, Priority: providers.PriorityNormal, Body: "call"}, true},
		{"escapes", providers.Notification{Title: "a\"b\\c\n\t\x01", Body: "<b>&amp;</b> \u2028\u2029 Привет 😀"}, true},
		{"invalid utf8", providers.Notification{Body: "a\xffb"}, true},
		{"data around aps", providers.Notification{Body: "x", Data: json.RawMessage(` { "zz" : 1 , "a":[1, {"k":"v"}], "b":null, "c":true, "big":12345678901234567890 } `)}, true},
		{"data html", providers.Notification{Data: json.RawMessage(`{"h":"<script>&"}`)}, true},
		{"data nested sorted", providers.Notification{Data: json.RawMessage(`{"m":{"a":1,"b":{"c":"d"}}}`)}, true},
		{"data nested unsorted", providers.Notification{Data: json.RawMessage(`{"m":{"b":1,"a":2}}`)}, false},
		{"data escaped text", providers.Notification{Data: json.RawMessage(`{"s":"\u0041\/\"x\"}"}`)}, false},
		{"data empty", providers.Notification{Body: "x", Data: json.RawMessage(`{}`)}, true},
	}
	for _, c := range cases {
		direct, ok := renderDirect(&c.n)
		if !ok {
			t.Errorf("%s: not rendered directly", c.name)
			continue
		}
		general, err := renderMaps(&c.n)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		gotHeaders, wantHeaders := *direct, *general
		gotHeaders.payload, wantHeaders.payload = nil, nil
		if !reflect.DeepEqual(gotHeaders, wantHeaders) {
			t.Errorf("%s: headers\n got %+v\nwant %+v", c.name, gotHeaders, wantHeaders)
		}
		if c.bytes && string(direct.payload) != string(general.payload) {
			t.Errorf("%s: payload\n got %s\nwant %s", c.name, direct.payload, general.payload)
		}
		var got, want any
		if err := json.Unmarshal(direct.payload, &got); err != nil {
			t.Fatalf("%s: direct payload %s: %v", c.name, direct.payload, err)
		}
		_ = json.Unmarshal(general.payload, &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: payload value\n got %s\nwant %s", c.name, direct.payload, general.payload)
		}
		if strings.ContainsAny(string(direct.payload), "<>&\n") {
			t.Errorf("%s: payload not compact and HTML-escaped: %s", c.name, direct.payload)
		}
	}

	general := []providers.Notification{
		{Body: "x", APNs: json.RawMessage(`{"aps":{"sound":"s"}}`)},
		{PushType: "shout"},
		{Priority: "urgent"},
		{CollapseID: strings.Repeat("c", 65)},
		{Data: json.RawMessage(`{"aps":{}}`)},
		{Data: json.RawMessage(`{"\u0061ps":{}}`)},
		{Data: json.RawMessage(`{"k":1,"k":2}`)},
		{Data: json.RawMessage(`[1]`)},
		{Data: json.RawMessage(`null`)},
		{Data: json.RawMessage(`{"a":1} {"b":2}`)},
		{Data: json.RawMessage(`{"a":"` + "\xff" + `"}`)},
		{Data: json.RawMessage(`{"a":`)},
	}
	for _, n := range general {
		if r, ok := renderDirect(&n); ok {
			t.Errorf("%+v rendered directly: %s", n, r.payload)
		}
	}
}

// TestRenderedDataKeepsMeaning: the keys of data are split correctly
// whatever their values hold (braces, commas and quotes inside strings).
func TestRenderedDataKeepsMeaning(t *testing.T) {
	t.Parallel()
	raw := `{"q":"a\"},{\"b","list":[{"x":"]"},[],{}],"z":{"y":{"x":","}},"n":-1.5e3,"t":false}`
	r, ok := renderDirect(&providers.Notification{Data: json.RawMessage(raw)})
	if !ok {
		t.Fatal("not rendered directly")
	}
	var got map[string]any
	if err := json.Unmarshal(r.payload, &got); err != nil {
		t.Fatalf("%s: %v", r.payload, err)
	}
	var want map[string]any
	_ = json.Unmarshal([]byte(raw), &want)
	want["aps"] = map[string]any{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %s", r.payload)
	}
}
