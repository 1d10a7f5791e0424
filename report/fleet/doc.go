// Package fleet finds the leaking instances of a fleet of daemons from the
// series a Prometheus server already holds.
//
// For every instance the selector picks it reads, over a range, the
// descriptors open against process_max_fds, go_goroutines, go_threads,
// go_memstats_heap_inuse_bytes, process_resident_memory_bytes and, when a
// daemon exports them (see tracker/prommetrics), leakcheck's tracker
// metrics, plus any extra query. Each series is cut at the restarts of its
// process (process_start_time_seconds changes, or process_cpu_seconds_total
// falls) and each run of the process is tested on its own with
// report.AnalyzeTrend, so that a restart never reads as a drop that cancels a
// leak, nor the jump between two runs as growth. A resource that grows in
// most runs, each cut short by a restart, is one finding that says so (a
// rising saw-tooth), with the typical time between restarts. A resource with
// a limit gets the time until it reaches it, projected along the Theil-Sen
// slope. All the resources of one instance that grow are one finding,
// ranked by time to exhaustion, then by growth relative to their level.
//
// The default metrics are read in batches of instances through Prometheus's
// remote read API, which streams the stored, compressed chunks (decoded
// here, and aligned to the step as a range query would); a server that
// refuses it (not every Prometheus-compatible server offers it, nor does a
// proxy that passes only the query API) is read through client_golang's API
// client and range queries instead, and a note of the result says which. Batches are fetched ahead with bounded
// concurrency and each is analysed as it arrives. It works against anything
// that speaks the Prometheus HTTP API.
package fleet
