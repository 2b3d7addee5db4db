package flag

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/advspace/advspace/dadc"
)

// FanOut sends every sample to several handlers at once, for instance a local
// Dir and an Outbox in front of a webhook.
//
// Flag calls every handler concurrently and returns nil only if all of them
// returned nil. Otherwise it returns a *PartialError naming the handlers that
// failed. The caller (the dadc Loop) then treats the flag as not
// acknowledged: it counts nothing and the person may submit again, which the
// handlers that did succeed absorb because they are idempotent by sample ID.
// So that one unreliable handler (the Hub, a webhook) never makes flags fail,
// put it behind an Outbox: the Outbox acknowledges once the sample is on
// local disk and delivers later.
//
// FanOut is a dadc.SampleSource through its first handler that is one and a
// dadc.Flusher (flushing all handlers that are). It has no Close: it holds
// nothing of its own, and the handlers are closed by whoever constructed
// them, after the FanOut's last use.
type FanOut[In any] struct {
	handlers []dadc.Flagger[In]
}

// NewFanOut returns a FanOut over the given handlers; nil handlers are
// skipped. The handlers stay the caller's.
func NewFanOut[In any](flaggers ...dadc.Flagger[In]) *FanOut[In] {
	f := &FanOut[In]{}
	for _, h := range flaggers {
		if h != nil {
			f.handlers = append(f.handlers, h)
		}
	}
	return f
}

// HandlerError is the failure of one handler of a FanOut.
type HandlerError struct {
	// Index is the handler's position in the NewFanOut arguments (nil ones skipped).
	Index int
	// Name is the handler's String() if it is a fmt.Stringer, else its type.
	Name string
	// Err is what the handler returned.
	Err error
}

// PartialError reports which handlers of a FanOut failed. The others
// succeeded.
type PartialError struct {
	// Op is the operation: "flag" or "flush".
	Op string
	// Total is the number of handlers called.
	Total int
	// Failed lists the failures in handler order.
	Failed []HandlerError
}

func (e *PartialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flag: fan-out %s: %d of %d handlers failed", e.Op, len(e.Failed), e.Total)
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "; [%d] %s: %v", f.Index, f.Name, f.Err)
	}
	return b.String()
}

// Unwrap returns the handlers' errors, so errors.Is and errors.As see them.
func (e *PartialError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

func handlerName(h any) string {
	if s, ok := h.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", h)
}

// each calls fn for every handler concurrently and gathers the failures.
func (f *FanOut[In]) each(op string, targets []int, fn func(i int) error) error {
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for k, i := range targets {
		wg.Go(func() { errs[k] = fn(i) })
	}
	wg.Wait()
	pe := &PartialError{Op: op, Total: len(targets)}
	for k, err := range errs {
		if err != nil {
			i := targets[k]
			pe.Failed = append(pe.Failed, HandlerError{Index: i, Name: handlerName(f.handlers[i]), Err: err})
		}
	}
	if len(pe.Failed) > 0 {
		return pe
	}
	return nil
}

func (f *FanOut[In]) all() []int {
	idx := make([]int, len(f.handlers))
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// Flag stores s with every handler concurrently; see FanOut.
func (f *FanOut[In]) Flag(ctx context.Context, s dadc.Sample[In]) error {
	if len(f.handlers) == 0 {
		return errors.New("flag: fan-out has no handlers; give NewFanOut at least one")
	}
	return f.each("flag", f.all(), func(i int) error { return f.handlers[i].Flag(ctx, s) })
}

// Samples lists the samples of the first handler that is a dadc.SampleSource
// (put the local Dir first), or nil if none is.
func (f *FanOut[In]) Samples(ctx context.Context) ([]dadc.Sample[In], error) {
	for _, h := range f.handlers {
		if src, ok := h.(dadc.SampleSource[In]); ok {
			return src.Samples(ctx)
		}
	}
	return nil, nil
}

// Flush flushes, concurrently, every handler that is a dadc.Flusher.
func (f *FanOut[In]) Flush(ctx context.Context) error {
	var targets []int
	for i, h := range f.handlers {
		if _, ok := h.(dadc.Flusher); ok {
			targets = append(targets, i)
		}
	}
	return f.each("flush", targets, func(i int) error { return f.handlers[i].(dadc.Flusher).Flush(ctx) })
}

var (
	_ dadc.Flagger[struct{}]      = (*FanOut[struct{}])(nil)
	_ dadc.SampleSource[struct{}] = (*FanOut[struct{}])(nil)
	_ dadc.Flusher                = (*FanOut[struct{}])(nil)
	_ error                       = (*PartialError)(nil)
)
