package authyexport

import (
	"context"
	"iter"
	"sync"
)

// FetchInOrder fetches the users ids yields with workers requests at most in flight, and
// delivers them in the order of the list (a checkpoint can only say "everything before this
// line"). At most window users are being fetched or waiting for an earlier one, and buffer
// fetched ones wait for the consumer (so fetching goes on while a batch is written): memory
// stays bounded whatever the list's length. stop ends the fetching and waits for it.
func FetchInOrder(ctx context.Context, ids iter.Seq2[Item, error], workers, window, buffer int,
	fetch func(context.Context, Item) Fetched) (out <-chan Fetched, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	type job struct {
		seq int
		it  Item
		err error
	}
	type result struct {
		seq int
		f   Fetched
	}
	jobs := make(chan job)
	results := make(chan result)
	ordered := make(chan Fetched, buffer)
	slots := make(chan struct{}, window)
	var wg sync.WaitGroup

	go func() { // the dispatcher: the list, in order, no further than window ahead
		defer close(jobs)
		seq := 0
		for it, err := range ids {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{seq, it, err}:
			case <-ctx.Done():
				return
			}
			seq++
			if err != nil {
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				f := Fetched{Err: j.err}
				if j.err == nil {
					f = fetch(ctx, j.it)
				}
				select {
				case results <- result{j.seq, f}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	go func() { // the collector: puts the results back in the list's order
		defer close(ordered)
		pending := map[int]Fetched{}
		next := 0
		for r := range results {
			pending[r.seq] = r.f
			for f, ok := pending[next]; ok; f, ok = pending[next] {
				delete(pending, next)
				next++
				select {
				case ordered <- f:
				case <-ctx.Done():
					return
				}
				<-slots
			}
		}
	}()
	return ordered, func() {
		cancel()
		for range ordered { // let the collector finish
		}
		wg.Wait()
	}
}
