package apns

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateNamesTheBadField(t *testing.T) {
	t.Parallel()
	good := App{ID: "a", Topic: "com.a", KeyFile: "k.p8", KeyID: keyID, TeamID: teamID}
	withApp := func(mod func(*App)) Options {
		a := good
		mod(&a)
		return Options{Apps: []App{good, a}}
	}
	cases := []struct {
		o    Options
		want string
	}{
		{Options{}, "apps: at least one app"},
		{withApp(func(a *App) { a.ID = "" }), "apps[1].id: required"},
		{withApp(func(a *App) {}), `apps[1].id: "a" is also apps[0].id`},
		{withApp(func(a *App) { a.ID, a.Topic = "b", "" }), "apps[1].topic: required"},
		{withApp(func(a *App) { a.ID, a.KeyFile, a.KeyID, a.TeamID = "b", "", "", "" }), "apps[1].key_file: no credentials"},
		{withApp(func(a *App) { a.ID, a.Key = "b", []byte("pem") }), "apps[1].key: set key_file or key, not both"},
		{withApp(func(a *App) { a.ID, a.KeyID = "b", "" }), "apps[1].key_id: required"},
		{withApp(func(a *App) { a.ID, a.TeamID = "b", "" }), "apps[1].team_id: required"},
		{withApp(func(a *App) { a.ID, a.KeyFile = "b", "" }), "apps[1].key_file: required"},
		{withApp(func(a *App) { a.ID, a.CertFile = "b", "c.p12" }), "apps[1].cert_file: token auth"},
		{withApp(func(a *App) { *a = App{ID: "b", Topic: "t", CertPassword: "x"} }), "apps[1].cert_file: required"},
		{Options{Apps: []App{good}, ProductionURL: "http://api.push.apple.com"}, "production_url"},
		{Options{Apps: []App{good}, SandboxURL: "https://h/3/device"}, "sandbox_url"},
		{Options{Apps: []App{good}, Concurrency: -1}, "concurrency"},
		{Options{Apps: []App{good}, Timeout: -time.Second}, "timeout"},
	}
	for _, c := range cases {
		err := c.o.Validate()
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
	ok := Options{Apps: []App{good, {ID: "c", Topic: "t", CertFile: "c.pem"}}, ProductionURL: "https://127.0.0.1:1/"}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid options: %v", err)
	}
	d := Options{}.withDefaults()
	if d.Concurrency != DefaultConcurrency || d.Timeout != DefaultTimeout || d.ProductionURL == "" || d.SandboxURL == "" || d.Logger == nil || d.Now == nil {
		t.Errorf("defaults: %+v", d)
	}
}
