package apns

import (
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sideshow/apns2/certificate"
	"golang.org/x/crypto/pkcs12"
)

// ErrLegacyP12 is wrapped when a .p12 file uses algorithms the PKCS#12
// decoder lacks: what OpenSSL 3 writes by default.
var ErrLegacyP12 = errors.New("the .p12 uses algorithms this loader cannot read (OpenSSL 3 default " +
	"export: SHA-256 MAC, AES); re-export it with `openssl pkcs12 -export -legacy ...`, " +
	"or convert it to PEM (`openssl pkcs12 -in cert.p12 -out cert.pem -nodes`) and set cert_file to the .pem")

// loadCertificate reads a PKCS#12 (.p12/.pfx) or PEM push certificate with
// its private key.
func loadCertificate(file, password string) (tls.Certificate, error) {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".p12", ".pfx":
		cert, err := certificate.FromP12File(file, password)
		if err == nil {
			return cert, nil
		}
		var notImpl pkcs12.NotImplementedError
		if errors.As(err, &notImpl) {
			return tls.Certificate{}, fmt.Errorf("load %s: %w: %w", file, ErrLegacyP12, err)
		}
		return tls.Certificate{}, fmt.Errorf("load %s: %w", file, err)
	default:
		cert, err := certificate.FromPemFile(file, password)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("load %s (PEM with certificate and key): %w", file, err)
		}
		return cert, nil
	}
}
