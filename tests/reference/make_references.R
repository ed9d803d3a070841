#!/usr/bin/env Rscript
# Regenerate the R reference outputs used by the operation bundles' tests.
#   cd /work/main/tests/reference && Rscript make_references.R
# Needs: r-bioc-deseq2, r-bioc-edger, r-bioc-limma, r-bioc-sva (Debian bookworm packages).
# Input data are written by make_data.py (seeded); outputs are small TSVs in this folder.
suppressPackageStartupMessages({
  library(DESeq2); library(edgeR); library(limma); library(sva)
})
set.seed(1)
read_counts <- function(f) as.matrix(read.delim(f, row.names = 1, check.names = FALSE))
write_ref <- function(df, f) {
  # results tables are written gzipped (file names end in .gz), numbers to 10 significant digits
  df <- as.data.frame(df)
  num <- vapply(df, is.numeric, logical(1))
  df[num] <- lapply(df[num], signif, digits = 10)
  out <- cbind(gene = rownames(df), df)
  con <- if (grepl("\\.gz$", f)) gzfile(f, "w") else file(f, "w")
  write.table(out, con, sep = "\t", quote = FALSE, row.names = FALSE, na = "NA")
  close(con)
}
versions <- sapply(c("DESeq2", "edgeR", "limma", "sva"), function(p) as.character(packageVersion(p)))
writeLines(c(R.version.string, paste(names(versions), versions)), "r_versions.txt")

cnts <- read_counts("counts_2group.tsv")
condition <- factor(ifelse(grepl("^ctrl", colnames(cnts)), "ctrl", "trt"), levels = c("ctrl", "trt"))

## DESeq2: Wald test, results() defaults (alpha 0.1, independent filtering, Cook's cutoff)
cd <- data.frame(condition = condition, row.names = colnames(cnts))
dds <- DESeqDataSetFromMatrix(cnts, cd, design = ~condition)
dds <- DESeq(dds, quiet = TRUE)
res <- results(dds, contrast = c("condition", "trt", "ctrl"))
out <- data.frame(baseMean = res$baseMean, log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE,
                  stat = res$stat, pvalue = res$pvalue, padj = res$padj,
                  dispersion = mcols(dds)$dispersion, dispFit = mcols(dds)$dispFit,
                  row.names = rownames(res))
write_ref(out, "deseq2_results.tsv.gz")
write_ref(data.frame(sizeFactor = sizeFactors(dds), row.names = colnames(cnts)), "deseq2_size_factors.tsv")

## limma-voom: TMM, drop genes with max CPM < 1, voom, lmFit, eBayes, topTable
d <- DGEList(counts = cnts, group = condition)
d <- calcNormFactors(d)
keep <- apply(cpm(d), 1, max) >= 1
d <- d[keep, ]
design <- model.matrix(~condition)
v <- voom(d, design)
fit <- eBayes(lmFit(v, design))
tt <- topTable(fit, coef = 2, number = Inf, sort.by = "P")
write_ref(tt[, c("logFC", "AveExpr", "t", "P.Value", "adj.P.Val", "B")], "limma_results.tsv.gz")
write_ref(data.frame(norm.factors = d$samples$norm.factors, lib.size = d$samples$lib.size,
                     row.names = colnames(cnts)), "tmm_norm_factors.tsv")

## edgeR: TMM, estimateDisp, glmFit, glmLRT, topTags
d <- DGEList(counts = cnts, group = condition)
d <- calcNormFactors(d)
d <- estimateDisp(d, design)
gfit <- glmFit(d, design)
lrt <- glmLRT(gfit, coef = 2)
tt <- topTags(lrt, n = Inf)$table
tt$tagwise <- d$tagwise.dispersion[match(rownames(tt), rownames(d))]
tt$trended <- d$trended.dispersion[match(rownames(tt), rownames(d))]
write_ref(tt[, c("logFC", "logCPM", "LR", "PValue", "FDR", "tagwise", "trended")], "edger_results.tsv.gz")
writeLines(c(paste("common.dispersion", d$common.dispersion), paste("prior.df", d$prior.df[1])),
           "edger_dispersion.txt")

## Likelihood ratio test: DESeq2 ~group vs ~1, cooksCutoff off
c3 <- read_counts("counts_3group.tsv")
ann3 <- read.delim("annotations_3group.tsv", row.names = 1, check.names = FALSE)
ann3 <- data.frame(group = factor(ann3[colnames(c3), "group"]), row.names = colnames(c3))
dds3 <- DESeqDataSetFromMatrix(c3, ann3, design = ~group)
dds3 <- DESeq(dds3, test = "LRT", reduced = ~1, quiet = TRUE)
r3 <- results(dds3, cooksCutoff = FALSE)
write_ref(data.frame(baseMean = r3$baseMean, log2FoldChange = r3$log2FoldChange, stat = r3$stat,
                     pvalue = r3$pvalue, padj = r3$padj, row.names = rownames(r3)), "lrt_results.tsv.gz")

## ComBat-seq
cb <- read_counts("counts_batch.tsv")
annb <- read.delim("annotations_batch.tsv", row.names = 1, check.names = FALSE)[colnames(cb), ]
adj0 <- ComBat_seq(cb, batch = annb$batch, group = NULL)
write_ref(adj0, "combatseq_adjusted.tsv.gz")
cov <- model.matrix(~condition, data = annb)[, -1, drop = FALSE]
adj1 <- ComBat_seq(cb, batch = annb$batch, group = NULL, covar_mod = cov)
write_ref(adj1, "combatseq_adjusted_covar.tsv.gz")
cat("done\n")
