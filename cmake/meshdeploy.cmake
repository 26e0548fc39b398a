# md_subsystem(NAME [DEPS target...] [TEST_DEPS target...] [PG])
#
# Declares the library md_<NAME> from every *.cc in the folder except
# *_test.cc, and one GoogleTest program <NAME>_tests from the *_test.cc files.
# WHY globbing: each subsystem is owned by one engineer at a time and files
# come and go often; the folder is the unit, and CONFIGURE_DEPENDS keeps
# ninja honest when a file is added.
# PG: the tests need the Postgres test cluster (ctest fixture "pg"); they read
# its URL from $MESHDEPLOY_TEST_PG_URL_FILE and fail (not skip) without it.
function(md_subsystem name)
  cmake_parse_arguments(ARG "PG" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  if(tests)
    list(REMOVE_ITEM srcs ${tests})
  endif()
  if(name STREQUAL "cli")
    list(REMOVE_ITEM srcs ${CMAKE_CURRENT_SOURCE_DIR}/main.cc)
  endif()
  # WHY EXCLUDE_FROM_ALL under the fuzz preset: that build only needs the
  # libraries its fuzzers link; building the rest with clang+sanitizers would
  # double CI time for nothing.
  if(MESHDEPLOY_FUZZ)
    add_library(md_${name} STATIC EXCLUDE_FROM_ALL ${srcs})
  else()
    add_library(md_${name} STATIC ${srcs})
  endif()
  target_include_directories(md_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src ${TL_EXPECTED_INCLUDE})
  target_link_libraries(md_${name} PUBLIC ${ARG_DEPS})
  if(MESHDEPLOY_TESTS AND tests AND NOT MESHDEPLOY_FUZZ)
    add_executable(${name}_tests ${tests})
    target_link_libraries(${name}_tests PRIVATE md_${name} ${ARG_TEST_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
    add_dependencies(unit_tests ${name}_tests)
    set(props ENVIRONMENT "MESHDEPLOY_TEST_PG_URL_FILE=${PROJECT_BINARY_DIR}/pg-test/url")
    if(ARG_PG)
      list(APPEND props FIXTURES_REQUIRED pg)
    endif()
    gtest_discover_tests(${name}_tests DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 30
                         PROPERTIES ${props})
  endif()
endfunction()
