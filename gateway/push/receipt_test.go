package push

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// TestReceiptSkipsOnlyUnchangedPayloads: Push trusts Validate's payload
// check only while the notification and its providers are what Validate
// saw; any change, including in place in the raw JSON, is checked again.
func TestReceiptSkipsOnlyUnchangedPayloads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	big := []byte(`{"x":"` + strings.Repeat("a", 4200) + `"}`)
	r := Request{Users: []string{"42"}, Notification: providers.Notification{Body: "x", Data: []byte(`{"k":"v"}`)}}
	if err := e.svc.Validate(&r); err != nil || r.checked == nil {
		t.Fatalf("Validate = %v, receipt %v", err, r.checked)
	}
	if fe := e.svc.validate(&r); fe != nil {
		t.Fatal(fe)
	}
	// In-place change of the raw data after Validate: checked again.
	copy(r.Notification.Data, `{"k":1  }`)
	if r.checked.matches(&r.Notification, true, true) {
		t.Error("receipt matches data changed in place")
	}
	r.Notification.Data = big
	if fe := e.svc.validate(&r); fe == nil || !fe.TooLarge {
		t.Fatalf("grown payload after Validate passed: %v", fe)
	}
	if r.checked != nil {
		t.Error("failed check kept a receipt")
	}

	// Every field of a notification but ExpiresAt is part of the receipt.
	base := providers.Notification{Body: "x"}
	rec := newReceipt(&base, true, false)
	if !rec.matches(&base, true, false) || rec.matches(&base, true, true) || rec.matches(&base, false, false) {
		t.Fatal("receipt does not follow the providers")
	}
	later := base
	later.ExpiresAt = time.Now()
	if !rec.matches(&later, true, false) {
		t.Error("ExpiresAt (set by Push after the check) breaks the receipt")
	}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "ExpiresAt" {
			continue
		}
		changed := base
		v := reflect.ValueOf(&changed).Elem().Field(i)
		switch f.Type.Kind() {
		case reflect.String:
			v.SetString("changed")
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Pointer:
			one := 1
			v.Set(reflect.ValueOf(&one))
		case reflect.Slice:
			v.Set(reflect.ValueOf(json.RawMessage(`{"a":1}`)))
		default:
			t.Fatalf("field %s of kind %s: teach the receipt about it", f.Name, f.Type.Kind())
		}
		if rec.matches(&changed, true, false) {
			t.Errorf("changing %s keeps the receipt valid", f.Name)
		}
	}
	one, two := 1, 2
	withBadge := providers.Notification{Badge: &one}
	rb := newReceipt(&withBadge, true, true)
	one = 2 // the caller reuses its variable: the receipt kept the value 1
	if rb.matches(&providers.Notification{Badge: &two}, true, true) {
		t.Error("receipt follows the caller's badge pointer instead of keeping its value")
	}
	if !rb.matches(&providers.Notification{Badge: &[]int{1}[0]}, true, true) {
		t.Error("same badge value not matched")
	}
}
