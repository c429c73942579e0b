"""The peer-to-peer layer on py-libp2p: identities, the host, gossip broadcast, direct
streams, reliable delivery, admission, the peer book and peer exchange.

`NetNode` (in `node`) wires it all; the node layer uses it and never the modules below
directly. The net layer moves opaque payloads with a routing header and never does
protocol maths. One module per concern:

    identity    node key in the data directory, peer id      peerid    peer id forms
    host        libp2p host: Noise, mplex, loud listen        wire      envelopes, frames
    gossip      gossipsub broadcast                           direct    /tssnode/direct/1.0.0
    reliable    sequence numbers, resends, catch-up           fetch     /tssnode/fetch/1.0.0
    admission   tiers, leases, drop counters                  pex       /tssnode/pex/1.0.0
    limits      bounds on what peers make the node hold
    peerbook    peers, latency, events                        dialer    (re)dial with backoff
    liveness    pings, frozen-peer detection                  store     messages by round
    logbridge   py-libp2p logging into ours                   streams   handler plumbing
    errors      exceptions

Multi-node clusters for tests and benchmarks are in `tssnode.testing` (`netcluster`,
`netharness`).
"""
