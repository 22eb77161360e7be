package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// The property the app cache depends on: whatever was committed before a caller asked is in its
// answer. Here "committed" is a counter bumped just before asking, and a read returns the
// counter as it was when the read started.
func TestFreshReadNeverAnswersWithAnOlderRead(t *testing.T) {
	var committed, reads atomic.Int64
	f := newFreshRead(func(context.Context) (int64, error) {
		reads.Add(1)
		return committed.Load(), nil
	})
	const callers, each = 32, 200
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				want := committed.Add(1)
				got, err := f.get(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if got < want {
					errs <- errors.New("answered with a read that started before the caller asked")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d gets, %d reads", callers*each, reads.Load())
}

// Callers who ask while a read runs do not join it; they share one read after it.
func TestFreshReadSharesTheNextRound(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var reads atomic.Int64
	f := newFreshRead(func(context.Context) (int64, error) {
		n := reads.Add(1)
		if n == 1 {
			close(started)
			<-release // the first read is in progress while the others ask
		}
		return n, nil
	})
	const waiters = 10
	joined := make(chan struct{}, waiters)
	f.onJoin = func() { joined <- struct{}{} }

	first := make(chan int64)
	go func() {
		n, _ := f.get(context.Background())
		first <- n
	}()
	<-started
	got := make(chan int64, waiters)
	for range waiters {
		go func() {
			n, err := f.get(context.Background())
			if err != nil {
				t.Error(err)
			}
			got <- n
		}()
	}
	for range waiters {
		<-joined
	}
	close(release)
	if n := <-first; n != 1 {
		t.Errorf("the first caller got read %d, want 1", n)
	}
	for range waiters {
		if n := <-got; n != 2 {
			t.Errorf("a waiter got read %d, want 2 (the one round after the read in progress)", n)
		}
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("%d reads for %d callers, want 2", n, waiters+1)
	}
}

func TestFreshReadWaiterLeavesWithItsContext(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	var once sync.Once
	f := newFreshRead(func(context.Context) (int64, error) {
		once.Do(func() { close(started) })
		<-release
		return 1, nil
	})
	joined := make(chan struct{}, 1)
	f.onJoin = func() { joined <- struct{}{} }
	go f.get(context.Background()) // the read in progress, held
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := f.get(ctx)
		done <- err
	}()
	<-joined
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestFreshReadPassesErrorsOn(t *testing.T) {
	boom := errors.New("disk gone")
	f := newFreshRead(func(context.Context) (int64, error) { return 0, boom })
	if _, err := f.get(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("got %v, want %v", err, boom)
	}
}
