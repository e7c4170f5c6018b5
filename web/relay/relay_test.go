package relay

import (
	"strings"
	"testing"
)

func TestOptionsValidateNamesTheField(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("ab", 16)
	ok := Options{Secret: "0123456789abcdef", Keys: []string{key}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for field, o := range map[string]Options{
		"Secret":  {Secret: "short", Keys: []string{key}},
		"Secret:": {Secret: "0123456789abcdef/x", Keys: []string{key}},
		"Keys":    {Secret: ok.Secret},
		"Keys[0]": {Secret: ok.Secret, Keys: []string{"DEMO"}},
		"Prefix":  {Prefix: "relay/", Secret: ok.Secret, Keys: []string{key}},
		"MaxBody": {Secret: ok.Secret, Keys: []string{key}, MaxBody: -1},
	} {
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(field, ":")) {
			t.Errorf("%s: err = %v", field, err)
		}
	}
	if r := (Options{}).Route(); r != "/bitrix-relay/:secret" {
		t.Errorf("default route %q", r)
	}
}
