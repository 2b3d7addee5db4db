package dadchttp

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/advspace/advspace/dadc"
)

// metrics are the Handler's Prometheus metrics: request counts and latencies
// per route, and the loop's state read from Loop.Stats at scrape time (so
// they are always consistent with /api/stats).
type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	predictions prometheus.Counter
	flags       *prometheus.CounterVec
	validations *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, stats func() dadc.Stats, backlog func() int) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "advspace_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "advspace_http_request_duration_seconds",
			Help:    "HTTP request latency by route (event streams: their whole life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route"}),
		predictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "advspace_predictions_total",
			Help: "Predictions answered by /api/predict.",
		}),
		flags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "advspace_flag_requests_total",
			Help: "Requests to /api/flag by outcome: fooled (sample stored), right (attempt counted), needs_confirmation (a confident disagreement, nothing stored), rejected (bad input), rate_limited, error.",
		}, []string{"outcome"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "advspace_validation_requests_total",
			Help: "Requests to /api/validate (kind verdict) and /api/retract (kind retraction) by outcome: stored, refused (own sample, twice, unknown, malformed), error.",
		}, []string{"kind", "outcome"}),
	}
	for _, outcome := range []string{"fooled", "right", "needs_confirmation", "rejected", "rate_limited", "error"} {
		m.flags.WithLabelValues(outcome)
	}
	for _, kind := range []string{string(dadc.RecordVerdict), string(dadc.RecordRetraction)} {
		for _, outcome := range []string{"stored", "refused", "error"} {
			m.validations.WithLabelValues(kind, outcome)
		}
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.predictions, m.flags, m.validations, &loopCollector{stats: stats, backlog: backlog}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("%w: register metrics: %w", ErrConfig, err)
		}
	}
	return m, nil
}

func (m *metrics) flagOutcome(outcome string) { m.flags.WithLabelValues(outcome).Inc() }

func (m *metrics) validationOutcome(kind, outcome string) {
	m.validations.WithLabelValues(kind, outcome).Inc()
}

var (
	descFlagged   = prometheus.NewDesc("advspace_flagged_samples_total", "Adversarial samples stored (the model was fooled), all rounds.", nil, nil)
	descAttempts  = prometheus.NewDesc("advspace_attempts_total", "Submissions the model got right (nothing stored), all rounds.", nil, nil)
	descErrorRate = prometheus.NewDesc("advspace_model_error_rate", "Fraction of submissions that fooled the model, all rounds.", nil, nil)
	descRound     = prometheus.NewDesc("advspace_round", "The current round.", nil, nil)
	descRetrain   = prometheus.NewDesc("advspace_retraining", "1 while a retrain runs.", nil, nil)
	descRetrains  = prometheus.NewDesc("advspace_retrains_total", "Finished retrains by outcome: promoted, rejected (failed the gate), failed (error).", []string{"outcome"}, nil)
	descModel     = prometheus.NewDesc("advspace_model_info", "The model being served (value 1).", []string{"version"}, nil)
	descBacklog   = prometheus.NewDesc("advspace_flag_backlog", "Flags stored locally that wait for upload to the Hub.", nil, nil)
)

// loopCollector exports the loop's Stats at scrape time.
type loopCollector struct {
	stats   func() dadc.Stats
	backlog func() int
}

func (c *loopCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFlagged, descAttempts, descErrorRate, descRound, descRetrain, descRetrains, descModel} {
		ch <- d
	}
	if c.backlog != nil {
		ch <- descBacklog
	}
}

func (c *loopCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- constMetric(descFlagged, prometheus.CounterValue, float64(st.FlaggedTotal))
	ch <- constMetric(descAttempts, prometheus.CounterValue, float64(st.Attempts))
	ch <- constMetric(descErrorRate, prometheus.GaugeValue, st.ModelErrorRate)
	ch <- constMetric(descRound, prometheus.GaugeValue, float64(st.Round))
	retraining := 0.0
	if st.Retraining {
		retraining = 1
	}
	ch <- constMetric(descRetrain, prometheus.GaugeValue, retraining)
	var promoted, rejected, failed float64
	for _, r := range st.Rounds {
		// A rejected candidate was scored (and has an Error saying why it
		// was rejected); a failed retrain has an Error and no score; a
		// running one has neither.
		switch {
		case r.Promoted:
			promoted++
		case r.CleanAccuracy != nil:
			rejected++
		case r.Error != "":
			failed++
		}
	}
	ch <- constMetric(descRetrains, prometheus.CounterValue, promoted, "promoted")
	ch <- constMetric(descRetrains, prometheus.CounterValue, rejected, "rejected")
	ch <- constMetric(descRetrains, prometheus.CounterValue, failed, "failed")
	ch <- constMetric(descModel, prometheus.GaugeValue, 1, st.ModelVersion)
	if c.backlog != nil {
		ch <- constMetric(descBacklog, prometheus.GaugeValue, float64(c.backlog()))
	}
}

// constMetric is prometheus.NewConstMetric without the panic of its Must
// form: a mistake shows up as an invalid metric in the scrape.
func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}
