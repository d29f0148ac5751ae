// Command greeter is a small web service that fiat runs as a process: it
// listens on PORT, answers /healthz once it is ready, and greets with the
// GREETING its config sets (`fiat config set greeter GREETING=Bonjour`).
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	greeting := cmp.Or(os.Getenv("GREETING"), "Hello")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s, %s!\n", greeting, r.PathValue("name"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "greeter: try /hello/ada")
	})
	srv := &http.Server{Addr: ":" + cmp.Or(os.Getenv("PORT"), "8000"), Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	// fiat sends SIGTERM when a newer version has taken over: finish the
	// requests in flight, then exit.
	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	go func() {
		<-stop.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("greeter listening on %s", srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
