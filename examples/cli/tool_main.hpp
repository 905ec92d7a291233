// SPDX-License-Identifier: MIT
#pragma once

#include <exception>
#include <iostream>

namespace kvbits::cli {

/**
 * The body of a tool's main(): parse the options, print the usage for --help, run, and turn any
 * exception into a single line "<tool>: <message>" on stderr with exit code 1.
 * @param tool  program name for error lines
 * @param usage text printed for --help
 * @param parse callable (argc, argv) -> options with a `help` flag
 * @param run   callable (options) -> exit code
 */
template <class Parse, class Run>
int tool_main(const char* tool, const char* usage, int argc, char** argv, Parse parse, Run run) {
  try {
    const auto options = parse(argc, argv);
    if (options.help) {
      std::cout << usage;
      return 0;
    }
    return run(options);
  } catch (const std::exception& error) {
    std::cout << std::flush;
    std::cerr << tool << ": " << error.what() << "\n";
    return 1;
  }
}

}  // namespace kvbits::cli
