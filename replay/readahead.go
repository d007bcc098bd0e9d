package replay

import (
	"context"
	"sync"
	"time"

	"github.com/eventkit/eventkit/lookback"
)

// slicePages is the size of a slice of a job's read, in pages: what one
// reader reads ahead, and holds, before the job sends it.
const slicePages = 8

// slicesHeld is how many slices a job holds, read or being read, for each
// of its readers.
const slicesHeld = 2

// pageReader hands out a job's pages in the order of its query, read
// ahead of the records being sent, so that reading the archive and
// producing overlap.
type pageReader struct {
	c    chan pageResult
	stop func() // stops the readers and waits for them; idempotent
}

type pageResult struct {
	page lookback.Page
	err  error
}

// readAhead reads f's pages after cursor, in order. Reading a page costs
// more than sending it, so with more than one reader (cfg.readers) the time
// range left is cut into consecutive slices of about slicePages pages
// each, judged from the records left to send (left): up to cfg.readers
// slices are read at once, each into a buffer of its own, and handed out
// one after the other, so the order is the query's all the same. A slice
// that holds more than its share (records bunched in time) fills its buffer
// and then reads as the job sends. The channel ends after the last page,
// after an error, or once ctx is done.
func (r *Runner) readAhead(ctx context.Context, f lookback.Filter, cursor string, size int, left int64) pageReader {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan pageResult)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(out)
		slices, err := r.slices(ctx, f, cursor, size, left)
		if err != nil {
			send(ctx, out, pageResult{err: err})
			return
		}
		// A slice holds a reading token while it is read, so that at most
		// cfg.readers are read at once, and a holding token from the start
		// of its read to the end of its handing out, which bounds the
		// slices held in memory. Holding more slices than are read keeps
		// every reader busy: with as many, the reader of the next slice
		// finishes early and then waits for the slice being sent, which
		// is read alone. Both are taken in the slices' order, so the slice
		// being sent has always started.
		reading := make(chan struct{}, r.cfg.readers)
		holding := make(chan struct{}, slicesHeld*r.cfg.readers)
		// Each slice's pages, in the slices' order.
		started := make(chan chan pageResult, cap(holding))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(started)
			buffer := slicePages // pages a slice reads ahead
			if len(slices) == 1 {
				buffer = 1 // the job's one slice: read as it sends
			}
			for _, s := range slices {
				if !send(ctx, holding, struct{}{}) || !send(ctx, reading, struct{}{}) {
					return
				}
				pages := make(chan pageResult, buffer)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-reading }()
					r.readSlice(ctx, s, size, pages)
				}()
				started <- pages // never blocks: it has room for every holding token
			}
		}()
		for i := 0; ; i++ {
			pages, ok := <-started
			if !ok {
				return
			}
			last := i == len(slices)-1
			for res := range pages {
				if res.err == nil {
					if len(res.page.Records) == 0 && !last {
						continue // an empty slice, or the end of one
					}
					if res.page.NextCursor == "" && !last {
						// The slice ends here, the job does not.
						res.page.NextCursor = lookback.EncodeCursor(lookback.Asc, lookback.PositionOf(&res.page.Records[len(res.page.Records)-1]))
					}
				}
				if !send(ctx, out, res) || res.err != nil {
					return
				}
			}
			<-holding
		}
	}()
	var once sync.Once
	return pageReader{c: out, stop: func() { once.Do(func() { cancel(); wg.Wait() }) }}
}

// readSlice sends q's pages to c in order and closes it after the last
// page, after an error, or once ctx is done.
func (r *Runner) readSlice(ctx context.Context, q lookback.Query, size int, c chan<- pageResult) {
	defer close(c)
	q.Order, q.Limit, q.Bare = lookback.Asc, size, true
	for {
		page, err := r.archive.Query(ctx, q)
		if ctx.Err() != nil || !send(ctx, c, pageResult{page, err}) {
			return
		}
		if err != nil || page.NextCursor == "" {
			return
		}
		q.Cursor = page.NextCursor
	}
}

// slices cuts what is left of f after cursor into consecutive queries of
// about slicePages pages each, in order; one query when a single reader
// reads, or when there is little to read.
func (r *Runner) slices(ctx context.Context, f lookback.Filter, cursor string, size int, left int64) ([]lookback.Query, error) {
	whole := []lookback.Query{{Filter: f, Cursor: cursor}}
	per := int64(slicePages * size)
	if r.cfg.readers < 2 || left <= 2*per || f.To.IsZero() {
		return whole, nil
	}
	// The slices share the time between the first record left and the
	// last one, not the filter's range, which a job's creation bounds.
	edge := func(o lookback.Order, cursor string) (time.Time, bool, error) {
		p, err := r.archive.Query(ctx, lookback.Query{Filter: f, Order: o, Limit: 1, Cursor: cursor, Bare: true})
		if err != nil || len(p.Records) == 0 {
			return time.Time{}, false, err
		}
		return p.Records[0].Timestamp, true, nil
	}
	from, ok, err := edge(lookback.Asc, cursor)
	if err != nil || !ok {
		return whole, err
	}
	to, ok, err := edge(lookback.Desc, "")
	if err != nil || !ok {
		return whole, err
	}
	span := to.Sub(from)
	n := left / per
	if span <= 0 || n < 2 {
		return whole, nil
	}
	n = min(n, int64(span)) // a slice is a nanosecond at least
	width := span / time.Duration(n)
	out := make([]lookback.Query, n)
	for i := range out {
		sf := f
		sf.From = from.Add(time.Duration(i) * width)
		if i < len(out)-1 {
			sf.To = sf.From.Add(width - time.Nanosecond)
		} // the last slice takes the rest, up to the filter's end
		out[i] = lookback.Query{Filter: sf}
	}
	out[0].Cursor = cursor
	return out, nil
}

// send sends v on c unless ctx is done first, and reports whether it did.
func send[T any](ctx context.Context, c chan<- T, v T) bool {
	select {
	case c <- v:
		return true
	case <-ctx.Done():
		return false
	}
}
