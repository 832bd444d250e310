"""Connected social accounts (channels) and their encrypted credentials."""
