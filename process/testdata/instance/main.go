// Command instance is the program the process runtime's tests run as a
// service: it serves on $PORT and does what its environment asks.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/websocket"
)

// held keeps what /alloc allocated.
var held []byte

func main() {
	if os.Getenv("IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	}
	if after, err := time.ParseDuration(os.Getenv("CRASH_AFTER")); err == nil {
		time.AfterFunc(after, func() { fmt.Println("crashing on purpose"); os.Exit(3) })
	}
	if os.Getenv("EXIT_AT_ONCE") != "" {
		fmt.Println("exiting before serving")
		os.Exit(2)
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/unhealthy", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "not yet", http.StatusServiceUnavailable) })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s from %d", os.Getenv("GREETING"), os.Getpid())
	})
	http.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		env := os.Environ()
		sort.Strings(env)
		fmt.Fprint(w, strings.Join(env, "\n"))
	})
	http.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			fmt.Fprintf(w, "error: %v", err)
			return
		}
		w.Write(data)
	})
	http.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Fiat-Version", "Fiat-Flags"} {
			fmt.Fprintf(w, "%s=%s\n", name, r.Header.Get(name))
		}
	})
	http.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		held = make([]byte, mb<<20)
		for i := range held {
			held[i] = 1
		}
		fmt.Fprintf(w, "holding %d MiB", mb)
	})
	http.HandleFunc("/spawn", func(w http.ResponseWriter, r *http.Request) {
		daemon := exec.Command("sleep", "1000")
		daemon.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := daemon.Start(); err != nil {
			fmt.Fprintf(w, "error: %v", err)
			return
		}
		fmt.Fprint(w, daemon.Process.Pid)
	})
	http.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("for"))
		time.Sleep(d)
		fmt.Fprint(w, "slow done")
	})
	http.Handle("/ws", websocket.Handler(func(ws *websocket.Conn) { io.Copy(ws, ws) }))
	http.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	fmt.Println("listening on", os.Getenv("PORT"))
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
