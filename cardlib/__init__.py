"""yikatong cardlib: the ISO 7816 layer and the card's language (APDU, SW, TLV, ATR,
channel, readers, crypto, and the wire formats of the purse, PSAM and SSSE)."""
