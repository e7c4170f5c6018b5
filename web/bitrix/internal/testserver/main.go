// Command testserver runs the Bitrix routes on a real hub with two echo
// listeners, for the conformance suite while cmd/pushpull does not wire
// them yet. It prints "ready pub=ADDR sub=ADDR" once both listen; on
// SIGTERM or SIGINT it announces server_restart, closes every connection
// with 1012 and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/web/bitrix"
)

func main() {
	pubAddr := flag.String("pub", "127.0.0.1:0", "publisher listen address")
	subAddr := flag.String("sub", "127.0.0.1:0", "subscriber listen address")
	key := flag.String("key", "", "signature key")
	algo := flag.String("algo", "sha1", "signature algorithm")
	hold := flag.Duration("hold", 0, "long-poll hold (default 40s)")
	flag.Parse()
	if err := run(*pubAddr, *subAddr, *key, *algo, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

func run(pubAddr, subAddr, key, algo string, hold time.Duration) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := hub.New(hub.Options{Logger: log})
	if err != nil {
		return err
	}
	defer h.Close()
	lp, err := net.Listen("tcp", pubAddr)
	if err != nil {
		return err
	}
	ls, err := net.Listen("tcp", subAddr)
	if err != nil {
		return err
	}
	pub, sub := echo.New(), echo.New()
	pub.HideBanner, sub.HideBanner = true, true
	bx, err := bitrix.Register(pub, sub, bitrix.Deps{Hub: h}, bitrix.Options{
		SignatureKey: key, SignatureAlgo: algo, PollHold: hold,
		PublicURL: "http://" + ls.Addr().String(), Logger: log,
	})
	if err != nil {
		return err
	}
	sp, ss := &http.Server{Handler: pub}, &http.Server{Handler: sub}
	go sp.Serve(lp)
	go ss.Serve(ls)
	fmt.Printf("ready pub=%s sub=%s\n", lp.Addr(), ls.Addr())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	bx.AnnounceRestart(ctx)
	h.CloseAll(1012, "server restart")
	_ = sp.Shutdown(ctx)
	_ = ss.Shutdown(ctx)
	return nil
}
