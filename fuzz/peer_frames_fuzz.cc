// Fuzz target: peer frames as a node's stack receives them. A 3-node chain
// (alice - bob - charlie, fuzz_common.h) is built with the simulator's
// builder (netsim::SimulatedNetwork: the same NodeStack the daemon runs),
// warmed up, and optionally set working (a key agreement, a link request and
// an end-to-end request, so the layers have state for the frames to hit).
// Then the input's frames, each parsed as the daemon's PeerFrame, have their
// batch's PeerMessages (any layer) handed to one node's stack as coming from
// the neighbour the input names - what the daemon's peer links do with a
// frame from an authenticated neighbour - while the honest nodes run on.
//
// Input: [receiver][activity flags] then up to 16 of
// [sender][2-byte length][PeerFrame bytes]. Each envelope is delivered
// (sent_unix_ns mod 2 ms) after the previous one, in simulated time.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "fuzz/fuzz_network.h"
#include "keydist/key_agreement.h"
#include "netsim/simulated_network.h"
#include "qnet/v1/peer_service.pb.h"

namespace qnet::fuzz {
namespace {

constexpr const char* kNodes[] = {"alice", "bob", "charlie"};
constexpr uint32_t kFuzzPurpose = 7;
constexpr int kMaxFrames = 16;

enum Activity : uint8_t { kKeyAgreement = 1, kLinkRequest = 2, kEndToEnd = 4 };

std::unique_ptr<netsim::SimulatedNetwork> BuildNetwork() {
  std::unique_ptr<netsim::SimulatedNetwork> net = BuildFuzzNetwork();
  // Receivers that accept pairs and, for KEEP pairs, free them at once.
  for (const char* name : kNodes) {
    stack::NodeStack* node = net->node(name);
    (void)node->link().RegisterReceiver(kFuzzPurpose, [](const link::LinkEvent&) {});
    (void)node->network().RegisterReceiver(kFuzzPurpose, [](const network::NetworkEvent&) {});
  }
  return net;
}

// Routing adverts spread, then the activity the flags ask for starts.
void StartActivity(netsim::SimulatedNetwork& net, uint8_t flags) {
  RunBounded(net.simulator(), std::chrono::microseconds(200), 5000);
  if (flags & kKeyAgreement) {
    keydist::KeyRequest r;
    r.peer = "charlie";
    r.bits = 8;
    r.block.pairs = 48;
    r.block.timeout = std::chrono::milliseconds(50);
    r.max_blocks = 1;
    (void)net.node("alice")->key_agreement()->Start(r, nullptr, [](absl::StatusOr<keydist::KeyAgreementResult>) {});
  }
  if (flags & kLinkRequest) {
    link::EntanglementRequest r;
    r.remote_node = "bob";
    r.number = 3;
    r.type = link::RequestType::kMeasure;
    r.purpose_id = kFuzzPurpose;
    r.max_time = std::chrono::milliseconds(20);
    (void)net.node("bob")->link().Create(r, [](const link::LinkEvent&) {});
  }
  if (flags & kEndToEnd) {
    network::EndToEndRequest r;
    r.remote_node = "charlie";
    r.number = 2;
    r.type = link::RequestType::kMeasure;
    r.basis = link::BasisChoice::kBb84;
    r.purpose_id = kFuzzPurpose;
    r.max_time = std::chrono::milliseconds(20);
    (void)net.node("alice")->network().Create(r, [](const network::NetworkEvent&) {});
  }
}

// "network.datagram.purpose_id..." : the set fields two levels down, so
// the seeds cover every kind of message the scenario sends.
std::string Kind(const google::protobuf::Message& m, int depth = 0) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);
  std::string out;
  for (const google::protobuf::FieldDescriptor* f : fields) {
    out += f->name();
    if (depth < 2 && f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated()) {
      out += "{" + Kind(m.GetReflection()->GetMessage(m, f), depth + 1) + "}";
    }
    out += ",";
  }
  return out;
}

}  // namespace

// Seeds: real traffic of the same scenario, as the receiving node saw it,
// a few consecutive messages per frame.
std::vector<std::string> Seeds() {
  std::unique_ptr<netsim::SimulatedNetwork> net = BuildNetwork();
  struct Seen {
    std::string from, to;
    v1::PeerMessage message;
  };
  std::vector<Seen> seen;
  net->channels().SetDeliveryObserver([&](TimePoint, const std::string& from, const std::string& to,
                                          const v1::PeerMessage& m) {
    if (seen.size() < 4000) seen.push_back({from, to, m});
  });
  StartActivity(*net, kKeyAgreement | kLinkRequest | kEndToEnd);
  RunBounded(net->simulator(), std::chrono::milliseconds(30), 200000);
  // Seeds start at the first few messages of every kind (layer, message,
  // and a datagram's or advert's own fields), then take the next messages
  // between the same two nodes.
  std::map<std::string, int> kinds;
  std::vector<std::string> seeds;
  for (size_t i = 0; i < seen.size() && seeds.size() < 48; ++i) {
    if (++kinds[Kind(seen[i].message)] > 2) continue;
    const std::string& to = seen[i].to;
    const std::string& from = seen[i].from;
    uint8_t receiver = 0;
    while (receiver < 3 && to != kNodes[receiver]) ++receiver;
    std::string input;
    input.push_back(static_cast<char>(receiver));
    input.push_back(static_cast<char>(seeds.size() % 8));  // a mix of activities
    v1::PeerFrame frame;
    for (size_t j = i; j < seen.size() && frame.batch().envelopes_size() < 3; ++j) {
      if (seen[j].to != to || seen[j].from != from) continue;
      v1::PeerEnvelope* e = frame.mutable_batch()->add_envelopes();
      *e->mutable_message() = seen[j].message;
      e->set_sent_unix_ns(1000 * frame.batch().envelopes_size());
    }
    // The sender byte: index of `from` among the receiver's neighbours.
    const std::vector<std::string> neighbours = net->config().Neighbours(to);
    uint8_t sender = 0;
    while (sender < neighbours.size() && neighbours[sender] != from) ++sender;
    input.push_back(static_cast<char>(sender));
    input += ChunkBytes(frame.SerializeAsString());
    seeds.push_back(std::move(input));
  }
  return seeds;
}

}  // namespace qnet::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qnet;
  if (size > 65536) return 0;
  fuzz::FuzzReader in(data, size);
  const std::string receiver = fuzz::kNodes[in.Byte() % 3];
  const uint8_t flags = in.Byte();
  std::unique_ptr<netsim::SimulatedNetwork> net = fuzz::BuildNetwork();
  fuzz::StartActivity(*net, flags);
  const std::vector<std::string> neighbours = net->config().Neighbours(receiver);
  sim::Simulator& simulator = net->simulator();
  // Deliveries are scheduled ahead on the simulator: they see the stack as
  // it is then, after the honest traffic before them.
  Duration at{0};
  int deliveries = 0;
  for (int f = 0; f < fuzz::kMaxFrames && !in.empty(); ++f) {
    const std::string& from = neighbours[in.Byte() % neighbours.size()];
    v1::PeerFrame frame;
    if (!frame.ParseFromString(in.Chunk()) || frame.kind_case() != v1::PeerFrame::kBatch) continue;
    for (const v1::PeerEnvelope& e : frame.batch().envelopes()) {
      if (++deliveries > 256) break;
      at += Duration(static_cast<uint64_t>(e.sent_unix_ns()) % 2'000'000);
      netsim::SimulatedNetwork* n = net.get();
      simulator.ScheduleAfter(at, [n, receiver, from, message = e.message()] {
        // A node's stack is gone only if crashed; nothing here crashes one.
        n->node(receiver)->OnPeerMessage(from, message);
      });
    }
  }
  fuzz::RunBounded(simulator, at + std::chrono::milliseconds(5), 20000);
  return 0;
}
