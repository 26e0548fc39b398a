// Migration files: the folder listing (version order), and one file read into
// statements, phases, locks and findings. Pure except list_dir/read.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "migrate/analyze.h"
#include "migrate/migrate.h"

namespace md::migrate {

struct FileRef {
  std::string version;
  std::string name;
  std::string file;  // file name
  std::filesystem::path path;
};

// Files matching ^([0-9]+)_(.*)\.sql$ in `dir`, ordered by version (numeric,
// then as text). Other files are ignored, as the Supabase CLI does. A missing
// folder is an empty list. kInvalidArgument for two files with one version.
Result<std::vector<FileRef>> list_dir(const std::filesystem::path& dir);

// One file analysed, plus what preflight needs from it.
struct ParsedFile {
  PlannedFile planned;
  std::vector<std::string> statements;  // text to execute, one per planned statement
  std::vector<std::pair<std::string, int>> extensions;  // CREATE EXTENSION names, with line
  std::vector<std::pair<std::string, int>> schemas;     // referenced, with line
  std::vector<std::pair<std::string, int>> roles;       // referenced, with line
  std::vector<std::string> created_schemas, created_roles;
};

// Splits, analyses and lints `content`. `ctx` carries new relations from
// earlier files of the same run and is updated. kInvalidArgument naming
// file:line for an unterminated quote/comment or a psql meta-command.
Result<ParsedFile> parse_file(const FileRef& ref, std::string_view content, AnalysisContext& ctx);

// Maps a Postgres error position (1-based, in characters) in `statement`
// to a line offset from the statement's first line.
int line_offset(std::string_view statement, int position);

}  // namespace md::migrate
