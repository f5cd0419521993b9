// What authorising a gRPC call costs: every call's caller is read from its
// TLS peer certificate (security::CallerIdentity). Parsing a PEM
// certificate with OpenSSL 3 (its decoder framework) against the cached
// lookup the daemons use.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "benchmark/benchmark.h"
#include "security/pki.h"

namespace qnet::security {
namespace {

std::string NodeCertificatePem() {
  static const std::string pem = [] {
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / "qnet-security-bench-pki";
    std::filesystem::remove_all(dir);
    if (!InitNetworkPki(dir, "benchnet", {"alice", "bob"}).ok()) std::abort();
    std::ifstream in(dir / "node-alice.crt");
    std::stringstream text;
    text << in.rdbuf();
    std::filesystem::remove_all(dir);
    return text.str();
  }();
  return pem;
}

void BM_IdentityOfCertificate(benchmark::State& state) {
  const std::string pem = NodeCertificatePem();
  for (auto _ : state) benchmark::DoNotOptimize(IdentityOfCertificate(pem));
}
BENCHMARK(BM_IdentityOfCertificate);

void BM_CachedIdentityOfCertificate(benchmark::State& state) {
  const std::string pem = NodeCertificatePem();
  for (auto _ : state) benchmark::DoNotOptimize(CachedIdentityOfCertificate(pem));
}
BENCHMARK(BM_CachedIdentityOfCertificate);

}  // namespace
}  // namespace qnet::security
