// The fuzz targets as regression tests in the normal (GCC) build, where
// libFuzzer is not available: feeds every file of the directories (or the
// files) named on the command line to LLVMFuzzerTestOneInput, in name order.
// A missing directory counts as empty (fuzz/regressions/<target>/ exists only
// once a crash has been found). `--write-seeds DIR` writes the target's seed
// inputs (fuzz::Seeds()) to DIR instead, named by content hash.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

int WriteSeeds(const fs::path& dir) {
  fs::create_directories(dir);
  int written = 0;
  for (const std::string& seed : qnet::fuzz::Seeds()) {
    // FNV-1a: a stable name, so rewriting the seeds changes only what changed.
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : seed) h = (h ^ c) * 1099511628211ULL;
    char name[32];
    std::snprintf(name, sizeof name, "seed-%016llx", static_cast<unsigned long long>(h));
    std::ofstream(dir / name, std::ios::binary) << seed;
    ++written;
  }
  std::printf("wrote %d seeds to %s\n", written, dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") return WriteSeeds(argv[2]);
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      std::vector<fs::path> in_dir;
      for (const auto& e : fs::directory_iterator(p)) {
        if (e.is_regular_file()) in_dir.push_back(e.path());
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (fs::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::printf("%s: no such directory (nothing to replay)\n", p.c_str());
    }
  }
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::printf("replaying %s (%zu bytes)\n", f.c_str(), bytes.size());
    std::fflush(stdout);  // a crash below names its input
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("replayed %zu inputs\n", files.size());
  return 0;
}
