package main

import (
	"fmt"
	"path/filepath"

	gwrelay "github.com/pushpull/pushpull/gateway/relay"
	webrelay "github.com/pushpull/pushpull/web/relay"
)

// relayOptions is the endpoint configuration of [relay] (secret resolved
// by buildRelay).
func relayOptions(c RelayConfig) webrelay.Options {
	keys := append([]string(nil), c.Keys...)
	for _, lk := range c.LicenseKeys {
		keys = append(keys, gwrelay.LicenseKeyHash(lk))
	}
	return webrelay.Options{Prefix: c.Prefix, Secret: c.Secret, Keys: keys, MaxBody: c.MaxBodyBytes}
}

// relayRoutes are the routes that read their body with the relay's own cap.
func relayRoutes(c RelayConfig) []string {
	if !c.Enabled {
		return nil
	}
	r := relayOptions(c).Route()
	return []string{r, r + "/"}
}

// buildRelay serves the Bitrix push relay when [relay] is enabled.
func (a *app) buildRelay(cfg Config) error {
	rc := cfg.Relay
	if !rc.Enabled {
		return nil
	}
	if rc.Secret == "" {
		f := filepath.Join(cfg.Server.DataDir, "relay_secret")
		s, created, err := generatedSecret(f)
		if err != nil {
			return fmt.Errorf("relay secret: %w", err)
		}
		rc.Secret = s
		if created {
			a.log.Warn("no [relay] secret configured: generated one; the portal's push_service_url is <publisher URL>"+rc.Prefix+"/<secret>/", "file", f)
		}
	}
	configured := map[string]map[string]bool{"apns": {}, "fcm": {}, "hms": {}}
	for _, x := range cfg.APNs.Apps {
		configured["apns"][x.ID] = true
	}
	for _, x := range cfg.FCM.Apps {
		configured["fcm"][x.ID] = true
	}
	for _, x := range cfg.HMS.Apps {
		configured["hms"][x.ID] = true
	}
	apps := make([]gwrelay.App, len(rc.Apps))
	for i, x := range rc.Apps {
		for platform, id := range map[string]string{"apns": x.APNs, "fcm": x.FCM, "hms": x.HMS} {
			if id != "" && !configured[platform][id] {
				return &ConfigError{Key: fmt.Sprintf("relay.app[%d].%s", i, platform),
					Message: fmt.Sprintf("no [[%s.app]] with id %q", platform, id)}
			}
		}
		apps[i] = gwrelay.App{Key: x.Key, APNs: x.APNs, FCM: x.FCM, HMS: x.HMS}
	}
	log := a.log.With("component", "relay")
	var err error
	if a.relay, err = gwrelay.NewService(a.push, gwrelay.ServiceOptions{
		Apps: apps, DefaultExpiry: rc.DefaultExpiry.Duration, Logger: log,
	}); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if rc.TokenRemoveCallback {
		if a.remover, err = gwrelay.NewRemover(gwrelay.RemoverOptions{Scheme: rc.CallbackScheme, Logger: log}); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	}
	o := relayOptions(rc)
	o.Logger = log
	if err := webrelay.Register(a.web.API, a.relay, o); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	a.metrics.Registry.MustRegister(webrelay.Collector(a.relay, a.remover))
	return nil
}
