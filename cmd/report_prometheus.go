package cmd

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	"github.com/leakcheck/leakcheck/report"
	"github.com/leakcheck/leakcheck/report/fleet"
)

// promOptions are the flags of `leakcheck report --prometheus`.
type promOptions struct {
	url           string
	rangeDur      time.Duration
	step          time.Duration
	selector      string
	queries       []string
	tokenFile     string
	tokenEnv      string
	basicAuthFile string
	timeout       time.Duration
}

// addPrometheusFlags adds the flags of the fleet analysis to f. Secrets
// come from a file or an environment variable, never from a flag's value,
// which would land in shell history and process listings.
func addPrometheusFlags(f *pflag.FlagSet, o *promOptions) {
	f.StringVar(&o.url, "prometheus", "", "find the leaking instances in the series of this Prometheus HTTP API, e.g. http://127.0.0.1:9090")
	f.DurationVar(&o.rangeDur, "range", fleet.DefaultRange, "with --prometheus: how far back to look")
	f.DurationVar(&o.step, "step", 0, "with --prometheus: the resolution of the series (default: the range / 1800, at least 1s)")
	f.StringVar(&o.selector, "selector", "", "with --prometheus: label matchers picking the instances, e.g. '{job=\"api\"}'")
	f.StringArrayVar(&o.queries, "query", nil, "with --prometheus: an extra series to analyse per instance, NAME=PROMQL (repeatable)")
	f.StringVar(&o.tokenFile, "token-file", "", "with --prometheus: read a bearer token from this file")
	f.StringVar(&o.tokenEnv, "token-env", "", "with --prometheus: read a bearer token from this environment variable")
	f.StringVar(&o.basicAuthFile, "basic-auth-file", "", "with --prometheus: read user:password for basic auth from this file")
}

// runPrometheus analyses the fleet behind o.url; see package report/fleet.
// Its errors are input errors: an unreachable server, a failed query, or a
// selector or query that matches nothing.
func runPrometheus(ctx context.Context, o promOptions, trend report.TrendOptions) (report.Result, error) {
	opts := fleet.Options{
		URL:      o.url,
		Range:    o.rangeDur,
		Step:     o.step,
		Selector: o.selector,
		Credentials: fleet.Credentials{
			TokenFile:     o.tokenFile,
			TokenEnv:      o.tokenEnv,
			BasicAuthFile: o.basicAuthFile,
		},
		Timeout: o.timeout,
		Trend:   trend,
	}
	for _, q := range o.queries {
		pq, err := fleet.ParseQuery(q)
		if err != nil {
			return report.Result{}, err
		}
		opts.Queries = append(opts.Queries, pq)
	}
	res, err := fleet.Analyze(ctx, opts)
	if err != nil {
		return report.Result{}, err
	}
	return res.Result, nil
}
