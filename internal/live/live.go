// Package live wakes the devices connected to this server (by Server-Sent Events) when an
// approval request of their user changes. A wake-up carries no data: the woken stream reads
// the current state from the store, so a missed or merged wake-up loses nothing.
//
// On one SQLite server the Broker alone does it, in process. When several servers share one
// PostgreSQL database, a wake-up must reach the streams connected to the others too: Relay
// (postgres.go) sends every publication as a NOTIFY and delivers the notifications it listens
// to, its own included, to the local broker.
//
// A subscriber is a Sub, whose channel a goroutine waits on, or a Watch (watch.go), whose
// callback the broker runs on a few goroutines of its own, with keep-alives from one shared
// timer: the way for the many long-lived event streams, which then hold no goroutine while
// they wait.
package live

import "sync"

type key struct{ app, user int64 }

// subscriber is what a publication wakes: a Sub or a Watch. wake must not block.
type subscriber interface{ wake() }

// Broker fans wake-ups out to subscribers, per user. It never blocks a publisher.
type Broker struct {
	mu sync.Mutex
	// A user has one subscriber or a few (one per connected device): a slice costs far less
	// than a map per user.
	subs map[key][]subscriber
	// send, when set (SetSender), carries a publication to every server instead of waking
	// this one's subscribers directly; it reports false when it could not, and then this
	// server's subscribers are woken at once.
	send func(appID, userID int64) bool

	runner runner    // runs Watch callbacks
	beats  heartbeat // the one timer of every Watch's keep-alive
}

// Sub is one subscription; C receives a value after one or more publications.
type Sub struct{ C chan struct{} }

func (s *Sub) wake() {
	select {
	case s.C <- struct{}{}:
	default:
	}
}

// Options tune a Broker; the zero value is the real clock and DefaultWorkers.
type Options struct {
	Clock   Clock // for keep-alives; nil: the system's
	Workers int   // Watch callbacks run at once at most; 0: DefaultWorkers
}

// DefaultWorkers bounds the Watch callbacks running at once: they read the store, whose pool
// is about this size, so more would only wait there, each holding a grown stack.
const DefaultWorkers = 16

// NewBroker returns an empty broker.
func NewBroker() *Broker { return NewBrokerOptions(Options{}) }

// NewBrokerOptions returns an empty broker tuned by o.
func NewBrokerOptions(o Options) *Broker {
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	b := &Broker{subs: map[key][]subscriber{}}
	b.runner.max = o.Workers
	b.beats.clock = o.Clock
	b.beats.due = b.runner.schedule
	return b
}

// SetSender routes publications through send (see Broker.send). Call it before the broker is
// used.
func (b *Broker) SetSender(send func(appID, userID int64) bool) { b.send = send }

// Subscribe wakes the returned Sub on every change for the user; call cancel when done.
func (b *Broker) Subscribe(appID, userID int64) (s *Sub, cancel func()) {
	s = &Sub{C: make(chan struct{}, 1)}
	k := key{appID, userID}
	b.add(k, s)
	return s, func() { b.remove(k, s) }
}

func (b *Broker) add(k key, s subscriber) {
	b.mu.Lock()
	b.subs[k] = append(b.subs[k], s)
	b.mu.Unlock()
}

func (b *Broker) remove(k key, s subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	list := b.subs[k]
	for i, x := range list {
		if x == s {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(b.subs, k)
	} else {
		b.subs[k] = list
	}
}

// Publish wakes every subscriber of the user, on every server when a sender is set. A
// subscriber already woken stays woken once.
func (b *Broker) Publish(appID, userID int64) {
	if b.send != nil && b.send(appID, userID) {
		return
	}
	b.Wake(appID, userID)
}

// Wake wakes this server's subscribers of the user only.
func (b *Broker) Wake(appID, userID int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs[key{appID, userID}] {
		s.wake()
	}
}

// WakeAll wakes every subscriber of this server, for when wake-ups may have been missed.
func (b *Broker) WakeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, list := range b.subs {
		for _, s := range list {
			s.wake()
		}
	}
}

// Count returns the number of subscriptions, for metrics.
func (b *Broker) Count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, list := range b.subs {
		n += len(list)
	}
	return n
}
