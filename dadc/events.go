package dadc

import (
	"sync"
	"time"
)

// EventKind names what happened in a Loop.
type EventKind string

// The kinds of Event a Loop publishes.
const (
	// EventFlagged: an input fooled the model and its sample is stored.
	EventFlagged EventKind = "flagged"
	// EventAttempt: the model classified a submission correctly; nothing stored.
	EventAttempt EventKind = "attempt"
	// EventRetrainStarted: a retrain began; the round stays open.
	EventRetrainStarted EventKind = "retrain_started"
	// EventModelPromoted: a candidate passed the gate, was stored and now
	// serves; its round closed and the next one opened.
	EventModelPromoted EventKind = "model_promoted"
	// EventModelRejected: a candidate failed the gate; the old model keeps serving.
	EventModelRejected EventKind = "model_rejected"
	// EventRetrainFailed: training or evaluation failed, panicked, timed out
	// or was cancelled; the old model keeps serving.
	EventRetrainFailed EventKind = "retrain_failed"
)

// Event is one thing that happened in a Loop, delivered to subscribers (see
// Loop.Subscribe). For flagged and attempt events Round is the round of the
// submission; for retrain events it is the round whose closing started the
// retrain (TrainRequest.Round), and ModelVersion is the model serving when the
// event was published.
type Event struct {
	Kind         EventKind `json:"kind"`
	Time         time.Time `json:"time"`
	Round        int       `json:"round"`
	ModelVersion string    `json:"model_version"`
	// Candidate is the retrained model's version (retrain events only).
	Candidate string `json:"candidate,omitempty"`
	// CleanAccuracy and AdversarialAccuracy are the candidate's scores
	// (promoted and rejected events; 0 when not measured).
	CleanAccuracy       float64 `json:"clean_accuracy"`
	AdversarialAccuracy float64 `json:"adversarial_accuracy"`
	// Reasons are the gate's reasons, with numbers (promoted and rejected events).
	Reasons []string `json:"reasons,omitempty"`
	// SampleID is the stored sample's ID (flagged events only).
	SampleID string `json:"sample_id,omitempty"`
	// FlaggedTotal is the Loop's flagged total when the event was published.
	FlaggedTotal int `json:"flagged_total"`
	// Message says what happened, for a person.
	Message string `json:"message"`
}

// defaultSubscriberBuffer is the channel buffer when Subscribe gets buffer <= 0.
const defaultSubscriberBuffer = 64

// broadcaster fans events out to subscribers without ever blocking the
// publisher: a subscriber whose buffer is full misses the event.
type broadcaster struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	closed  bool
	dropped uint64
}

type subscriber struct {
	ch chan Event
}

func (b *broadcaster) subscribe(buffer int) (<-chan Event, func()) {
	if buffer <= 0 {
		buffer = defaultSubscriberBuffer
	}
	s := &subscriber{ch: make(chan Event, buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	if b.subs == nil {
		b.subs = make(map[*subscriber]struct{})
	}
	b.subs[s] = struct{}{}
	cancel := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			close(s.ch)
		}
	}
	return s.ch, cancel
}

// publish delivers e to every subscriber that has room, and counts the misses.
func (b *broadcaster) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- e:
		default:
			b.dropped++
		}
	}
}

func (b *broadcaster) droppedCount() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// closeAll closes every subscription; later subscriptions get a closed channel.
func (b *broadcaster) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		close(s.ch)
	}
	b.subs = nil
}
