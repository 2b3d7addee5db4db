// Package cputime reads the CPU time the process has used, user and system
// together: what the benchmarks report beside the elapsed time, which a busy
// machine stretches while the CPU time stays.
package cputime
