package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/apns"
	"github.com/pushpull/pushpull/providers/fcm"
	"github.com/pushpull/pushpull/providers/hms"
)

// buildProviders builds a provider for each platform that has apps
// configured. Credentials are loaded now, so a bad key file stops startup
// with the app named rather than failing at the first push.
func buildProviders(ctx context.Context, cfg Config, log *slog.Logger) ([]providers.Provider, error) {
	var out []providers.Provider
	if len(cfg.APNs.Apps) > 0 {
		apps := make([]apns.App, len(cfg.APNs.Apps))
		for i, a := range cfg.APNs.Apps {
			apps[i] = apns.App{
				ID: a.ID, Topic: a.Topic, VoIPTopic: a.VoIPTopic,
				KeyFile: a.KeyFile, KeyID: a.KeyID, TeamID: a.TeamID,
				CertFile: a.CertFile, CertPassword: a.CertPassword,
			}
		}
		var roots *x509.CertPool
		if cfg.APNs.CAFile != "" {
			pem, err := os.ReadFile(cfg.APNs.CAFile)
			if err != nil {
				return nil, &ConfigError{Key: "apns.ca_file", Message: err.Error()}
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, &ConfigError{Key: "apns.ca_file", Message: "no PEM certificate in " + cfg.APNs.CAFile}
			}
		}
		p, err := apns.New(apns.Options{
			Apps: apps, ProductionURL: cfg.APNs.ProductionURL, SandboxURL: cfg.APNs.SandboxURL,
			Concurrency: cfg.APNs.Concurrency, Timeout: cfg.APNs.Timeout.Duration, RootCAs: roots,
			Logger: log.With("component", "apns"),
		})
		if err != nil {
			return nil, fmt.Errorf("apns: %w", err)
		}
		out = append(out, p)
	}
	if len(cfg.FCM.Apps) > 0 {
		apps := make([]fcm.App, len(cfg.FCM.Apps))
		for i, a := range cfg.FCM.Apps {
			apps[i] = fcm.App{ID: a.ID, CredentialsFile: a.CredentialsFile, ProjectID: a.ProjectID}
		}
		p, err := fcm.New(ctx, fcm.Options{
			Apps: apps, Endpoint: cfg.FCM.Endpoint,
			Concurrency: cfg.FCM.Concurrency, Timeout: cfg.FCM.Timeout.Duration,
			Logger: log.With("component", "fcm"),
		})
		if err != nil {
			for _, p := range out {
				p.Close()
			}
			return nil, fmt.Errorf("fcm: %w", err)
		}
		out = append(out, p)
	}
	if len(cfg.HMS.Apps) > 0 {
		apps := make([]hms.App, len(cfg.HMS.Apps))
		for i, a := range cfg.HMS.Apps {
			apps[i] = hms.App{
				ID: a.ID, HMSAppID: a.HMSAppID, ClientID: a.ClientID, ClientSecret: a.ClientSecret,
				ClientSecretFile: a.ClientSecretFile, HighUrgency: a.HighUrgency, BadgeClass: a.BadgeClass,
			}
		}
		p, err := hms.New(hms.Options{
			Apps: apps, Endpoint: cfg.HMS.Endpoint, TokenURL: cfg.HMS.TokenURL,
			Concurrency: cfg.HMS.Concurrency, Timeout: cfg.HMS.Timeout.Duration,
			Logger: log.With("component", "hms"),
		})
		if err != nil {
			for _, p := range out {
				p.Close()
			}
			return nil, fmt.Errorf("hms: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}
