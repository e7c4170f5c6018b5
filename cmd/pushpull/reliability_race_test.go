//go:build race

package main

// raceEnabled: the child process is the race-instrumented test binary,
// several times slower; the load suite scales down unless in soak mode.
const raceEnabled = true
