package api

import (
	"errors"
	"testing"

	"github.com/pushpull/pushpull/web/apierr"
)

func TestDecodeBytes(t *testing.T) {
	type item struct {
		Users []string `json:"users"`
		N     int      `json:"n"`
	}
	type req struct {
		Items []item `json:"items"`
	}
	cases := []struct {
		body, field string
		ok          bool
	}{
		{`{"items":[{"users":["1"],"n":2}]}`, "", true},
		{``, "", false},
		{`   `, "", false},
		{`{"items":`, "", false},
		{`{"items":[{"n":"x"}]}`, "items.n", false},
		{`{"items":[{"users":"1"}]}`, "items.users", false},
		{`{"itemz":[]}`, "itemz", false},
		{`{"items":[]} {"again":1}`, "", false},
		{`{"items":[]} x`, "", false},
		{`[1,2]`, "", false},
	}
	for _, tc := range cases {
		var r req
		err := DecodeBytes([]byte(tc.body), &r)
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.body, err)
			}
			continue
		}
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Code != apierr.CodeInvalidArgument {
			t.Errorf("%s: err = %v, want invalid_argument", tc.body, err)
			continue
		}
		if ae.Field != tc.field {
			t.Errorf("%s: field %q, want %q (%v)", tc.body, ae.Field, tc.field, ae)
		}
	}
}
