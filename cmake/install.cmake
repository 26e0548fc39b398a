# `cmake --install` and CPack (docs/installation.md). Two components:
#   runtime  the stripped binary, systemd units, sysusers entry, man page,
#            bash and zsh completions  -> meshdeploy_<version>_<arch>.deb
#   debug    its split debug info      -> meshdeploy-dbgsym_<version>_<arch>.deb
# The work happens at install time (cmake/install_step.cmake) so that
# `--prefix` and DESTDIR given to `cmake --install` land in the unit file.
set(md_step "set(MD_BIN \"$<TARGET_FILE:meshdeploy>\")
set(MD_SRC \"${PROJECT_SOURCE_DIR}\")
set(MD_STAGE \"${PROJECT_BINARY_DIR}/install-stage\")
set(MD_OBJCOPY \"${CMAKE_OBJCOPY}\")")
install(CODE "${md_step}
set(MD_COMPONENT runtime)
include(\"${PROJECT_SOURCE_DIR}/cmake/install_step.cmake\")" COMPONENT runtime)
install(CODE "${md_step}
set(MD_COMPONENT debug)
include(\"${PROJECT_SOURCE_DIR}/cmake/install_step.cmake\")" COMPONENT debug)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME meshdeploy)
set(CPACK_PACKAGE_CONTACT "meshdeploy maintainers <maintainers@meshdeploy.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "zero-downtime deploys for HTTP services on Postgres")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime debug)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)  # WHY: xz takes minutes on the debug info
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME meshdeploy)
# Depends: from the shared libraries the binary links (dpkg-shlibdeps).
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "systemd")
# postinst creates the system user and enables nothing.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA "${PROJECT_SOURCE_DIR}/packaging/debian/postinst")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_DEBUG_PACKAGE_NAME meshdeploy-dbgsym)
set(CPACK_DEBIAN_DEBUG_PACKAGE_SECTION debug)
set(CPACK_DEBIAN_DEBUG_PACKAGE_DEPENDS "meshdeploy (= ${PROJECT_VERSION})")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "meshdeploy: the binary, systemd units, man page, completions")
set(CPACK_COMPONENT_DEBUG_DESCRIPTION "meshdeploy: debug information for the binary")
include(CPack)
