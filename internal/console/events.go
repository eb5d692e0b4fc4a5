package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// events streams server-sent events: "change" with the kind that changed,
// whenever an object the pages show changes, so pages refresh themselves.
// It watches each kind in all namespaces, or, where the user may not, in the
// namespaces the page names (?namespaces=a,b).
func (s *Server) events(w http.ResponseWriter, r *http.Request, sess *session) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "", "streaming is not supported")
		return
	}
	var namespaces []string
	for _, ns := range strings.Split(r.URL.Query().Get("namespaces"), ",") {
		if ns != "" && len(validation.IsDNS1123Label(ns)) == 0 {
			namespaces = append(namespaces, ns)
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\nevent: ready\ndata: {}\n\n")
	flusher.Flush()

	ctx := r.Context()
	changes := make(chan string, 16)
	for kind, newList := range lists {
		go s.watch(ctx, sess, kind, newList, namespaces, changes)
	}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	pending := map[string]bool{}
	var flush <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown:
			return
		case <-heartbeat.C:
			fmt.Fprint(w, ": ping\n\n")
			flusher.Flush()
		case kind := <-changes:
			pending[kind] = true
			if flush == nil {
				flush = time.After(150 * time.Millisecond)
			}
		case <-flush:
			flush = nil
			for kind := range pending {
				fmt.Fprintf(w, "event: change\ndata: %q\n\n", kind)
				delete(pending, kind)
			}
			flusher.Flush()
		}
	}
}

// watch reports changes of one kind until ctx ends: in all namespaces, or in
// each of namespaces when the user may not watch all of them.
func (s *Server) watch(ctx context.Context, sess *session, kind string, newList func() client.ObjectList, namespaces []string, changes chan<- string) {
	if err := s.watchScope(ctx, sess, kind, newList, "", changes); apierrors.IsForbidden(err) {
		for _, ns := range namespaces {
			go func() {
				if err := s.watchScope(ctx, sess, kind, newList, ns, changes); err != nil && ctx.Err() == nil {
					s.Log.V(1).Info("live updates stopped", "user", sess.user, "kind", kind, "namespace", ns, "error", err.Error())
				}
			}()
		}
	}
}

// watchScope watches one kind in one namespace ("" for all), re-opening the
// watch when the API server ends it, until ctx ends or the user may not watch.
func (s *Server) watchScope(ctx context.Context, sess *session, kind string, newList func() client.ObjectList, namespace string, changes chan<- string) error {
	for ctx.Err() == nil {
		wi, err := sess.client.Watch(ctx, newList(), client.InNamespace(namespace))
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) {
			return err
		}
		if err == nil {
			for range wi.ResultChan() {
				select {
				case changes <- kind:
				default:
				}
			}
			wi.Stop()
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return ctx.Err()
}
