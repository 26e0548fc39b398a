#include <iostream>

#include "cli/cli.h"

int main(int argc, char** argv) {
  md::cli::Io io{std::cin, std::cout, std::cerr};
  return md::cli::run(argc, argv, io);
}
