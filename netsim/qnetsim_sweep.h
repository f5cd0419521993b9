// qnetsim --sweep: reruns one experiment (link pairs, end-to-end pairs or a
// key) over a range of link lengths or hop counts, prints a table or JSON,
// and with --plot draws the figure (plot/figure.h).
#pragma once

#include <cstdint>
#include <string>

#include "config/network_config.h"
#include "keydist/key_agreement.h"
#include "link/link_service.h"
#include "netsim/decoy_experiment.h"
#include "netsim/sweep.h"
#include "plot/sweep_range.h"

namespace qnet::netsim {

struct SweepOptions {
  enum class Mode { kLink, kPath, kQkd, kWeakCoherent };
  Mode mode = Mode::kLink;
  plot::SweepRange range;
  std::string network_path;
  uint64_t seed = 1;
  std::string link = "all";  // the link whose length is swept ("all": every link)
  std::string from;
  std::string to;            // empty when hops are swept
  uint32_t pairs = 1000;
  link::BasisChoice basis = link::BasisChoice::kSixState;
  std::string basis_name;
  double min_fidelity = 0.0;
  Duration time_limit{0};
  keydist::KeyRequest key_request;  // kQkd; its peer is set per point
  WeakCoherentBb84Options weak_coherent;  // kWeakCoherent: decoy-bb84 or bb84-wcp over from-to
  std::string output;               // "text" or "json"
  std::string plot_path;            // empty: no plot
  // Points run at once, each its own simulated network on a thread of its
  // own (0: one per core). The points and their order do not depend on it.
  int jobs = 0;
};

// Runs every point (a failed point is reported and the sweep goes on) and
// returns the process exit code: 0 if every point ran and the plot, if
// asked for, was written.
int RunSweep(const config::NetworkConfig& config, const SweepOptions& options);

}  // namespace qnet::netsim
