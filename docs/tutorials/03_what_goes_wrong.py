# %% [markdown]
# # 03_what_goes_wrong

# %%
print(1)
