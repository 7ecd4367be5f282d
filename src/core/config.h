// Config: schema-checked reading of TOML topology files.
// Callers name every key they know; whatever is left over is an error that names the key and
// its line, so a typo never silently falls back to a default.
// Thread-safety: not thread-safe; used at start-up. Errors are thrown as ConfigError (start-up
// is the one place exceptions are allowed, see docs/errors.md).
// Ownership: ConfigFile owns the parsed document; Section is a view into it.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace millions::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ConfigFile;

// One [table] of the file. Get* leave `out` unchanged when the key is absent (the default) and
// throw ConfigError naming file, line and key when it has the wrong type or range.
class Section {
 public:
  bool present() const { return node_ != nullptr; }
  void Get(const char* key, std::string* out);
  void Get(const char* key, int64_t* out, int64_t min, int64_t max);
  void Get(const char* key, int* out, int min, int max);
  void Get(const char* key, bool* out);
  void Get(const char* key, double* out, double min, double max);
  void Get(const char* key, std::vector<std::string>* out);
  // A string that must be one of `choices`.
  void GetChoice(const char* key, std::string* out, const std::vector<std::string>& choices);
  // Nested [table.sub] and [[table.sub]] arrays of tables.
  Section Sub(const char* key);
  std::vector<Section> SubArray(const char* key);

 private:
  friend class ConfigFile;
  Section(ConfigFile* file, const void* node, std::string path)
      : file_(file), node_(node), path_(std::move(path)) {}
  const void* Lookup(const char* key);
  [[noreturn]] void Fail(const void* node, const std::string& key, const std::string& what);
  ConfigFile* file_;
  const void* node_;  // toml::table*, kept opaque to keep toml++ out of this header
  std::string path_;
};

class ConfigFile {
 public:
  // Parses `path`; throws ConfigError with the parser's line and column on bad TOML.
  static std::unique_ptr<ConfigFile> Load(const std::string& path);
  static std::unique_ptr<ConfigFile> Parse(const std::string& text, const std::string& name);
  ~ConfigFile();
  Section Root();
  Section Table(const char* key) { return Root().Sub(key); }
  // Throws ConfigError for the first key (in file order) that no Get/Sub asked for.
  void RejectUnknownKeys();
  // The same, only under the named tables ("lb", or dotted: "lb.node") and for keys at the top
  // level that are not tables: a process that reads some roles' sections checks just those,
  // leaving the sections of roles it does not run to the processes that run them.
  void RejectUnknownKeysIn(const std::vector<std::string>& tables);
  const std::string& name() const { return name_; }

 private:
  friend class Section;
  struct Impl;
  explicit ConfigFile(std::unique_ptr<Impl> impl, std::string name);
  std::unique_ptr<Impl> impl_;
  std::string name_;
};

// Splits "host:port"; throws ConfigError on a bad form.
struct HostPort {
  std::string host;
  int port = 0;
};
HostPort ParseHostPort(const std::string& text);

}  // namespace millions::config
