"""Modal screens: approval, pickers (model, resume), onboarding, trust, quit confirmation."""
