"""Operations: `frontline doctor`, `frontline backup` and `frontline restore`."""
