// Command frontend is the shop's web front: it answers /price/{item} with
// what the backend says, calling it at BACKEND_URL, which fiat sets to the
// backend version this frontend version was deployed with.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	backend := os.Getenv("BACKEND_URL")
	if backend == "" {
		log.Fatal("BACKEND_URL is not set: fiat sets it from uses = [\"backend\"] in fiat.toml")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /price/{item}", func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, backend+"/price/"+url.PathEscape(r.PathValue("item")), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, "the backend did not answer: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		// Which backend answered: fiat names the version in every response.
		w.Header().Set("Backend-Version", resp.Header.Get("Fiat-Version"))
		if resp.StatusCode != http.StatusOK {
			w.WriteHeader(resp.StatusCode)
			fmt.Fprintf(w, "no price for %s\n", r.PathValue("item"))
			return
		}
		var price struct {
			Item  string `json:"item"`
			Price int    `json:"price"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&price); err != nil {
			http.Error(w, "the backend answered what is not a price: "+err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "%s costs %d\n", price.Item, price.Price)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "shop: try /price/apple")
	})
	srv := &http.Server{Addr: ":" + cmp.Or(os.Getenv("PORT"), "8000"), Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	go func() {
		<-stop.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("frontend listening on %s, calling the backend at %s", srv.Addr, backend)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
