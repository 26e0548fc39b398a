# Runs inside `cmake --install` (rules in cmake/install.cmake), once per
# component. Inputs: MD_BIN (the built binary), MD_SRC (source dir), MD_STAGE
# (a build-dir folder), MD_OBJCOPY, MD_COMPONENT (runtime or debug).
#
# The built binary keeps its debug info (RelWithDebInfo, ~176 MB); what is
# installed is stripped, with the debug info in a separate file found by
# build id (PREFIX/lib/debug/.build-id/xx/rest.debug, as Debian's dbgsym
# packages do) and named by a .gnu_debuglink whose CRC ties the two.
# The man page and the completions come from the binary itself
# (`meshdeploy help --man`, `--completion`), i.e. from the command table.
cmake_policy(VERSION 3.25)  # scoped to this file: cmake_install.cmake sets no policies
if(NOT EXISTS "${MD_STAGE}/meshdeploy" OR "${MD_BIN}" IS_NEWER_THAN "${MD_STAGE}/meshdeploy")
  execute_process(COMMAND readelf -n "${MD_BIN}" OUTPUT_VARIABLE notes COMMAND_ERROR_IS_FATAL ANY)
  if(NOT notes MATCHES "Build ID: ([0-9a-f]+)")
    message(FATAL_ERROR "${MD_BIN} has no build id: link with -Wl,--build-id")
  endif()
  set(id "${CMAKE_MATCH_1}")
  string(SUBSTRING "${id}" 0 2 id_dir)
  string(SUBSTRING "${id}" 2 -1 id_file)
  file(REMOVE_RECURSE "${MD_STAGE}")
  file(MAKE_DIRECTORY "${MD_STAGE}/debug/.build-id/${id_dir}")
  set(debug "${MD_STAGE}/debug/.build-id/${id_dir}/${id_file}.debug")
  execute_process(COMMAND "${MD_OBJCOPY}" --only-keep-debug --compress-debug-sections=zlib
                          "${MD_BIN}" "${debug}" COMMAND_ERROR_IS_FATAL ANY)
  file(CHMOD "${debug}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  execute_process(COMMAND "${MD_OBJCOPY}" --strip-debug --strip-unneeded
                          "--add-gnu-debuglink=${debug}" "${MD_BIN}" "${MD_STAGE}/meshdeploy.tmp"
                  COMMAND_ERROR_IS_FATAL ANY)
  foreach(out IN ITEMS "meshdeploy.1:--man" "meshdeploy.bash:--completion;bash"
                       "_meshdeploy:--completion;zsh")
    string(REPLACE ":" ";" parts "${out}")
    list(POP_FRONT parts name)
    execute_process(COMMAND "${MD_STAGE}/meshdeploy.tmp" help ${parts}
                    OUTPUT_FILE "${MD_STAGE}/${name}" COMMAND_ERROR_IS_FATAL ANY)
  endforeach()
  file(RENAME "${MD_STAGE}/meshdeploy.tmp" "${MD_STAGE}/meshdeploy")
endif()

if(MD_COMPONENT STREQUAL "debug")
  file(INSTALL "${MD_STAGE}/debug/" DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/debug")
  return()
endif()
set(prefix "${CMAKE_INSTALL_PREFIX}")
file(INSTALL "${MD_STAGE}/meshdeploy" DESTINATION "${prefix}/bin" USE_SOURCE_PERMISSIONS)
file(INSTALL "${MD_STAGE}/meshdeploy.1" DESTINATION "${prefix}/share/man/man1")
file(INSTALL "${MD_STAGE}/meshdeploy.bash" DESTINATION "${prefix}/share/bash-completion/completions"
     RENAME meshdeploy)
file(INSTALL "${MD_STAGE}/_meshdeploy" DESTINATION "${prefix}/share/zsh/vendor-completions")
# The unit names the binary where this install puts it.
file(READ "${MD_SRC}/packaging/systemd/meshdeploy-agent.service.in" unit)
string(REPLACE "@BINDIR@" "${prefix}/bin" unit "${unit}")
file(WRITE "${MD_STAGE}/units/meshdeploy-agent.service" "${unit}")
file(INSTALL "${MD_STAGE}/units/meshdeploy-agent.service"
             "${MD_SRC}/packaging/systemd/meshdeploy-agent.socket"
     DESTINATION "${prefix}/lib/systemd/system")
file(INSTALL "${MD_SRC}/packaging/systemd/meshdeploy.sysusers" DESTINATION "${prefix}/lib/sysusers.d"
     RENAME meshdeploy.conf)
file(INSTALL "${MD_SRC}/LICENSE" DESTINATION "${prefix}/share/doc/meshdeploy" RENAME copyright)
