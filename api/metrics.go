package api

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// newHTTPMetrics records request latency by method, route pattern and
// status. The route pattern (not the raw path) keeps label cardinality bounded.
func newHTTPMetrics(reg prometheus.Registerer) fiber.Handler {
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "wuyou",
		Name:      "http_request_duration_seconds",
		Help:      "HTTP request latency by method, route and status.",
		Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route", "status"})
	reg.MustRegister(latency)
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		status := c.Response().StatusCode()
		if err != nil {
			// the error handler has not run yet: take the status it will write
			if e, ok := err.(*fiber.Error); ok {
				status = e.Code
			} else if s := statusOfError(err); s != 0 {
				status = s
			}
		}
		latency.WithLabelValues(c.Method(), c.Route().Path, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		return err
	}
}
