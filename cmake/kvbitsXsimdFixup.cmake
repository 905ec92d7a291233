# Debian's xsimd 8.1 export lists "xtl" as a link library although xsimd is
# header-only and needs xtl only for XSIMD_ENABLE_XTL_COMPLEX, which kvbits does
# not use; without an xtl target that name would become a bogus -lxtl.
if(TARGET xsimd AND NOT TARGET xtl)
  get_target_property(_kvbits_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
  if(_kvbits_xsimd_links)
    list(REMOVE_ITEM _kvbits_xsimd_links xtl)
    set_target_properties(xsimd PROPERTIES INTERFACE_LINK_LIBRARIES "${_kvbits_xsimd_links}")
  endif()
endif()
