"""Edge gateway benchmark (issue #4): one edge agent polling 200 Modbus devices x 20 registers at 1/min over
TCP simulators (cycle time, CPU), and the replay of 1 000 000 buffered readings after a reconnect (readings/s).

    .venv/bin/python -m bench.edge_poll            # 20 polling cycles per variant, 1 000 000 readings replayed
    .venv/bin/python -m bench.edge_poll --quick    # 5 cycles, 100 000 readings

Polling: 10 Modbus TCP simulator servers (apps.protocols.simulators.modbus_meter, in a child process) with
20 unit ids each, as a gateway sees RS-485 lines behind serial-to-TCP converters; each device has 10 float32
input-register points (20 registers). One ModbusPoller per endpoint (apps.protocols.pollers.modbus: coalesced
reads, one transaction at a time per bus, back-off), the 10 buses polled concurrently, cycles back to back
(the 60 s period is compared, not waited for). Variants: contiguous map (1 request per device) and a map with a
30-register gap (2 requests). Unit 20 of the first server is dead (never answers). Then the edge agent's own
modbus_tcp drivers (apps.edge.drivers: the same ModbusPoller shared per bus, read() per device), built from a
parsed config with the agent's default timeout_s, all 200 read() at once.

Replay: an apps.edge Buffer filled with readings of 200 sources x 10 points per minute, taken while offline
(backfill); a real Mosquitto; a subscriber process counting and checking what arrives; then apps.edge's Agent
(its sender and Publisher; polling parked on a manual clock) drains the buffer. Measured from the agent's
start to the last acknowledgement.
"""
