"""Decentralised learning: every honest node keeps its own model and talks only to its neighbours.

The third setting beside the server's step and federated rounds, chosen with
``topology`` (``--topology ring``): a round is a local SGD step on every honest
node (one batched engine pass, each node at its own parameters), then a gossip
step in which each node combines its model with what its neighbours send
through a gossip rule (He, Karimireddy & Jaggi, "Byzantine-Robust
Decentralized Learning via ClippedGossip", arXiv 2202.01545, Algorithm 1).
Byzantine nodes sit on vertices of the graph and may send a different vector
to each honest neighbour.

Modules: `graph` (mixing matrix, spectral gap, Byzantine weights,
connectivity), `topologies` (the graph specs), `gossip` (the gossip rules),
`neighbourhood` (any aggregation rule applied to a node and its neighbours),
`messages` (what Byzantine nodes send), `checks` (the configuration's checks),
`simulation` (the round loop). This file imports nothing, so the configuration
can read the registries without pulling in the round loop.
"""
